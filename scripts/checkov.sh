#!/usr/bin/env bash
# checkov on the Kubernetes objects of the given stacks (default: staging prod), with .checkov.yaml.
#   scripts/checkov.sh                 render + scan staging and prod
#   scripts/checkov.sh prod            one stack
#   scripts/checkov.sh --dir DIR       scan an existing directory of manifests
# checkov lives in its own virtualenv (.venv-checkov, created on first use) because its pins clash with ours.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
VENV=.venv-checkov
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -x "$VENV/bin/checkov" ] || [ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "installing checkov==$CHECKOV_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
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
