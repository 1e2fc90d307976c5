#!/usr/bin/env bash
# checkov on the Kubernetes objects of the given stacks (default: staging prod), with .checkov.yaml.
#   scripts/checkov.sh                 render + scan staging and prod
#   scripts/checkov.sh prod            one stack
#   scripts/checkov.sh --dir DIR       scan an existing directory of manifests
# checkov lives in its own virtualenv (.venv-checkov, created on first use) because its pins clash with ours, and is
# installed from its hash-locked file (requirements/checkov.txt, from checkov.in): every transitive pin and hash fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=requirements/checkov.txt
CHECKOV_VERSION=$(sed -n 's/^checkov==\([^ ]*\).*/\1/p' "$LOCK")
VENV=.venv-checkov
PYTHON=${PYTHON:-.venv/bin/python}

# The virtualenv is rebuilt whenever the lock changes (the stamp is the lock's hash), never topped up in place.
STAMP="$VENV/.lock.sha256"
WANT=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "installing checkov==$CHECKOV_VERSION into $VENV from $LOCK" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps --requirement "$LOCK"
  echo "$WANT" >"$STAMP"
fi

scan() {
  echo "checkov: $1" >&2
  "$VENV/bin/checkov" --config-file .checkov.yaml -d "$1"
}

if [ "${1:-}" = "--dir" ]; then
  scan "${2:?--dir needs a directory}"
  exit 0
fi

status=0
for stack in "${@:-staging prod}"; do
  for s in $stack; do
    out="build/manifests/$s"
    rm -rf "$out"
    "$PYTHON" -m stacks manifests "$s" --out "$out" >&2
    scan "$out" || status=1
  done
done
exit $status
