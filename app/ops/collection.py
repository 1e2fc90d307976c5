"""`python -m app.ops.collection migrate|status`: create or upgrade the Qdrant collection (idempotent).

Run once per release before the new API/worker pods start (a Kubernetes Job / Helm pre-upgrade hook): it
creates `<name>_v<schema>` behind the `<name>` alias, or migrates an older schema in place, and refuses a
collection written by a newer release. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

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
    try:
        result = asyncio.run(run(args.command, get_worker_settings()))
    except SchemaError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
