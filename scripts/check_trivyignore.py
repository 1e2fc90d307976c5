#!/usr/bin/env python3
"""Fail unless every accepted vulnerability in .trivyignore.yaml is reviewed, scoped and current.

    python scripts/check_trivyignore.py .trivyignore.yaml [--today YYYY-MM-DD]

An entry suppresses a finding in every image CI scans, so each one must say what it is accepted for (`purls` or
`paths`: a bare id would hide the same CVE in a package where it is exploitable), who accepted it and why
(`statement`), and until when (`expired_at`, in the future and at most MAX_DAYS ahead: acceptance is renewed by a
fresh review, never left to stand). Trivy itself only drops an expired entry silently, which turns a forgotten
exception back into a red build without anyone knowing why; this check says why. Exit 0 ok, 1 findings, 2 usage.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

MAX_DAYS = 90
SECTIONS = ("vulnerabilities", "misconfigurations", "secrets", "licenses")
_ID = re.compile(r"^(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|AVD-[A-Z]+-\d{4,})$")
_MIN_STATEMENT = 20


def check(data: Any, today: date) -> list[str]:
    if not isinstance(data, dict):
        return ["the file must be a mapping with a `vulnerabilities:` list"]
    unknown = sorted(set(data) - set(SECTIONS))
    findings = [f"unknown section(s) {unknown}; allowed: {', '.join(SECTIONS)}"] if unknown else []
    for section in SECTIONS:
        entries = data.get(section) or []
        if not isinstance(entries, list):
            findings.append(f"{section}: must be a list")
            continue
        for i, entry in enumerate(entries):
            findings += [f"{section}[{i}]: {problem}" for problem in _entry_problems(entry, today)]
    return findings


def _entry_problems(entry: Any, today: date) -> list[str]:
    if not isinstance(entry, dict):
        return ["must be a mapping (id, purls|paths, statement, expired_at)"]
    problems = []
    ident = str(entry.get("id", ""))
    if not _ID.match(ident):
        problems.append(f"id {ident!r} is not a CVE, GHSA or AVD id")
    if not (entry.get("purls") or entry.get("paths")):
        problems.append(f"{ident}: no `purls` or `paths`: accept it for one package, not for every image")
    if len(str(entry.get("statement") or "").strip()) < _MIN_STATEMENT:
        problems.append(f"{ident}: `statement` must say who accepted it and why (at least {_MIN_STATEMENT} chars)")
    expiry = entry.get("expired_at")
    if isinstance(expiry, datetime):
        expiry = expiry.date()
    if not isinstance(expiry, date):
        problems.append(f"{ident}: `expired_at` must be a date (YYYY-MM-DD)")
    elif expiry <= today:
        problems.append(f"{ident}: expired on {expiry}: fix it, or review it again with a new date")
    elif expiry > today + timedelta(days=MAX_DAYS):
        problems.append(f"{ident}: `expired_at` {expiry} is more than {MAX_DAYS} days ahead")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--today", type=date.fromisoformat, default=datetime.now(UTC).date())
    args = parser.parse_args(argv)
    try:
        data = yaml.safe_load(args.path.read_text())
    except (OSError, yaml.YAMLError) as e:
        print(f"{args.path}: {e}", file=sys.stderr)
        return 2
    findings = check(data, args.today)
    for finding in findings:
        print(f"{args.path}: {finding}", file=sys.stderr)
    if not findings:
        count = sum(len(data.get(s) or []) for s in SECTIONS)
        print(f"{args.path}: {count} accepted finding(s), each scoped, explained and current")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
