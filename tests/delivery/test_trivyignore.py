"""The reviewed ignore file the image scans read: scoped, explained and current, or CI fails with the reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from scripts.check_trivyignore import MAX_DAYS, check

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 5)
GOOD = {
    "id": "CVE-2026-12345",
    "purls": ["pkg:pypi/pillow@11.0.0"],
    "statement": "accepted by @platform: the vulnerable decoder is never reached (we re-encode PNG only)",
    "expired_at": date(2027, 1, 15),
}


def test_the_committed_file_passes_the_check() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/check_trivyignore.py", ".trivyignore.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_scoped_explained_current_entry_passes() -> None:
    assert check({"vulnerabilities": [GOOD]}, TODAY) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "not-an-id"}, "is not a CVE"),
        ({"purls": None}, "no `purls` or `paths`"),
        ({"statement": "ok"}, "must say who accepted it"),
        ({"expired_at": None}, "must be a date"),
        ({"expired_at": date(2026, 12, 5)}, "expired on 2026-12-05"),
        ({"expired_at": date(2027, 6, 1)}, f"more than {MAX_DAYS} days ahead"),
    ],
)
def test_each_unreviewed_entry_is_refused_with_its_reason(change: dict[str, object], reason: str) -> None:
    findings = check({"vulnerabilities": [{**GOOD, **change}]}, TODAY)
    assert len(findings) == 1 and reason in findings[0]


def test_the_file_format_is_what_trivy_reads() -> None:
    data = yaml.safe_load((ROOT / ".trivyignore.yaml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list)
    assert check({"exceptions": []}, TODAY) and check([], TODAY)


def test_the_cli_exits_1_and_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "ignore.yaml"
    bad.write_text(yaml.safe_dump({"vulnerabilities": [{**GOOD, "expired_at": date(2020, 1, 1)}]}))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_trivyignore.py"), str(bad), "--today", "2026-12-05"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "CVE-2026-12345: expired on 2020-01-01" in result.stderr
