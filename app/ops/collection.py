"""`python -m app.ops.collection migrate|status`: create or upgrade the Qdrant collection (idempotent).

Run once per release before the new API/worker pods start (a Kubernetes Job / Helm pre-upgrade hook): it
creates `<name>_v<schema>` behind the `<name>` alias, or migrates an older schema in place, and refuses a
collection written by a newer release. Prints one JSON object. Audited (app/ops/audit_trail.py): exit 3 when
the audit bucket cannot be written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from app.ops.audit_trail import command_audit, run_audited
from app.services.factory import vector_index
from app.services.vectors import SCHEMA_VERSION, SchemaError
from app.worker.settings import WorkerSettings, get_worker_settings


async def run(command: str, settings: WorkerSettings) -> dict[str, object]:
    index = vector_index(settings)
    try:
        if command == "migrate":
            return {"command": "migrate", **asdict(await index.ensure_collection())}
        target = await index.resolve()
        return {
            "command": "status",
            "alias": index.alias,
            "collection": target,
            "schema_version": await index.collection_version(),
            "code_schema_version": SCHEMA_VERSION,
            "points": await index.count() if target else 0,
        }
    finally:
        await index.client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.collection", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["migrate", "status"])
    args = parser.parse_args(argv)
    settings = get_worker_settings()

    def work(outcome: dict[str, object]) -> int:
        try:
            result = asyncio.run(run(args.command, settings))
        except SchemaError as exc:
            outcome["error"] = str(exc)
            print(json.dumps({"error": str(exc)}), file=sys.stderr)
            return 2
        outcome.update({k: v for k, v in result.items() if k != "command"})
        print(json.dumps(result))
        return 0

    audit = command_audit(settings, action=f"ops.collection.{args.command}", target=settings.qdrant_collection)
    return run_audited(audit, work)


if __name__ == "__main__":
    raise SystemExit(main())
