"""requirements/*.txt: one hash-locked file per extra, in step with pyproject.toml's pins.

A pin changed in pyproject without re-running `python scripts/lock.py` fails here, before CI installs a set
nobody tested.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = sorted(PYPROJECT["project"]["optional-dependencies"])
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[norm(m["name"])] = m["version"]
    return pins


def blocks(path: Path) -> list[str]:
    """Each requirement with its continuation lines."""
    out: list[str] = []
    for line in path.read_text().splitlines():
        if PIN.match(line):
            out.append(line)
        elif out and line.startswith("    --hash"):
            out[-1] += line
    return out


@pytest.mark.parametrize("extra", EXTRAS)
def test_every_extra_has_a_lock_file_with_its_pins(extra: str) -> None:
    path = ROOT / "requirements" / f"{extra}.txt"
    assert path.exists(), f"requirements/{extra}.txt missing: run `python scripts/lock.py {extra}`"
    pins = locked(path)
    stale = []
    for req in PYPROJECT["project"]["optional-dependencies"][extra]:
        m = PIN.match(req)
        assert m, f"pyproject extra {extra!r} has an unpinned requirement {req!r}"
        if pins.get(norm(m["name"])) != m["version"]:
            stale.append(f"{req} (lock has {pins.get(norm(m['name']))})")
    assert not stale, f"requirements/{extra}.txt is stale, run `python scripts/lock.py {extra}`: {stale}"


@pytest.mark.parametrize("name", [*EXTRAS, "tools", "checkov"])
def test_every_locked_requirement_carries_hashes(name: str) -> None:
    path = ROOT / "requirements" / f"{name}.txt"
    entries = blocks(path)
    assert entries, f"{path.name} locks nothing"
    unhashed = [e.split()[0] for e in entries if "--hash=sha256:" not in e]
    assert not unhashed, f"{path.name}: no hash for {unhashed}"
    header = path.read_text().split("\n\n", 1)[0]
    assert "pip-compile" in header and "--generate-hashes" in header  # Renovate's pip-compile manager re-runs it


def test_tools_lock_holds_the_linters_ci_installs() -> None:
    pins = locked(ROOT / "requirements" / "tools.txt")
    for line in (ROOT / "requirements" / "tools.in").read_text().splitlines():
        m = PIN.match(line)
        if m:
            assert pins.get(norm(m["name"])) == m["version"], line


def test_checkov_is_installed_from_its_lock_with_hashes() -> None:
    """scripts/checkov.sh installs the locked set (rebuilt when the lock changes), never a bare `checkov==X`."""
    pins = locked(ROOT / "requirements" / "checkov.txt")
    for line in (ROOT / "requirements" / "checkov.in").read_text().splitlines():
        m = PIN.match(line)
        if m:
            assert pins.get(norm(m["name"])) == m["version"], line
    script = (ROOT / "scripts" / "checkov.sh").read_text()
    installs = [line for line in script.splitlines() if 'pip" install' in line or "pip install" in line]
    assert installs and all("--require-hashes" in i and '--requirement "$LOCK"' in i for i in installs), installs
    assert "LOCK=requirements/checkov.txt" in script
