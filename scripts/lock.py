#!/usr/bin/env python3
"""Regenerate the hash-locked requirement files under requirements/ from pyproject.toml (one per extra).

    .venv/bin/python scripts/lock.py            # every extra + tools
    .venv/bin/python scripts/lock.py infra app  # some

Each file is `pip-compile --generate-hashes` output, so `pip install --require-hashes --no-deps -r
requirements/<extra>.txt` reproduces exactly the tested set (CI, the deploy workflow and the Dockerfiles install
this way). Renovate's pip-compile manager re-runs the pip-compile command recorded in each header. Needs pip-tools
(`pip install pip-tools==7.6.2`) and PyPI; the local CPU torch wheel is deliberately NOT used (find-links off):
the embedder image runs the PyPI (CUDA) build on the GPU nodes. CI's test job installs the CPU build itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("infra", "app", "embedder", "dev")


def compile_one(name: str) -> list[str]:
    out = f"requirements/{name}.txt"
    common = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
        "--strip-extras", "--no-emit-find-links", "--no-emit-index-url", "--resolver=backtracking",
        "--output-file", out,
    ]  # fmt: skip
    if name in EXTRAS:
        return [*common, "--extra", name, "pyproject.toml"]
    return [*common, f"requirements/{name}.in"]


def main(argv: list[str]) -> int:
    names = argv or [*EXTRAS, "tools"]
    unknown = [n for n in names if n not in EXTRAS and not (ROOT / "requirements" / f"{n}.in").exists()]
    if unknown:
        print(f"lock: unknown {unknown}; allowed: {', '.join(EXTRAS)} or requirements/<name>.in", file=sys.stderr)
        return 2
    # Ignore this machine's pip config (local wheel folders, mirrors, the torch cap): a lock names PyPI files only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    for name in names:
        print(f"lock: requirements/{name}.txt", file=sys.stderr)
        subprocess.run(compile_one(name), cwd=ROOT, env=env, check=True)  # noqa: S603 - fixed argv
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
