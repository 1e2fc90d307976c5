"""`python -m app.ops.dsar list|export|delete --subject <sub>`: one data subject's data, for operators.

The same work as the admin routes `/admin/subjects/{subject}` (app/services/dsar.py), for when the API is not the
way in (a bulk request, an offboarding script, the API itself down). `export --out file.zip` writes the complete
bundle for the requester: `subject.json` (documents with their manifests and page payloads, job records, dead
letters) and every stored object's bytes under `objects/`. Prints one JSON object on stdout; logs go to stderr.
Audited (app/ops/audit_trail.py). Runbook: docs/runbooks/data-lifecycle-requests.md.

Exit codes: 0 done, 1 erasure incomplete (a job still running: run `delete` again once it stopped), 2 bad input,
3 audit bucket not writable (nothing was read or deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from app.core.logging import configure_logging
from app.ops.audit_trail import command_audit, run_audited
from app.ops.settings import OpsSettings, get_ops_settings
from app.services.dsar import SubjectData, check_subject
from app.services.factory import page_storage, vector_index
from app.services.jobs import JobStore


async def run(command: str, subject: str, settings: OpsSettings, out: Path | None = None) -> dict[str, Any]:
    redis = Redis.from_url(settings.redis_url)
    vectors = vector_index(settings)
    data = SubjectData(storage=page_storage(settings), vectors=vectors, jobs=JobStore(redis))
    try:
        if command == "list":
            return (await data.inventory(subject)).to_dict()
        if command == "export":
            assert out is not None
            return {"archive": str(out), "summary": await data.write_archive(subject, out)}
        return (await data.delete(subject)).__dict__
    finally:
        await redis.aclose()
        await vectors.client.close()


def _summary(command: str, result: dict[str, Any]) -> dict[str, Any]:
    if command == "delete":
        keys = ("documents", "vectors", "objects", "jobs", "dead_letters", "cache_entries", "complete", "pending_jobs")
        return {k: result[k] for k in keys}
    return dict(result["summary"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.dsar", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "export", "delete"])
    parser.add_argument("--subject", required=True, help="the `sub` claim of the subject's tokens")
    parser.add_argument("--out", type=Path, help="export: the zip archive to write (must not exist)")
    args = parser.parse_args(argv)
    try:
        check_subject(args.subject)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "export" and (args.out is None or args.out.exists()):
        parser.error("export needs --out <new file.zip> (an existing file is never overwritten)")
    settings = get_ops_settings()
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)

    def work(outcome: dict[str, Any]) -> int:
        result = asyncio.run(run(args.command, args.subject, settings, args.out))
        outcome.update(_summary(args.command, result))
        print(json.dumps(result, default=str))
        return 1 if args.command == "delete" and not result["complete"] else 0

    audit = command_audit(settings, action=f"ops.dsar.{args.command}", target=args.subject)
    return run_audited(audit, work)


if __name__ == "__main__":
    raise SystemExit(main())
