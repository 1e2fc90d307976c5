"""`python -m app.ops.reindex [--drop-old]`: re-embed every page into a new collection version, switch the alias.

Used after a model upgrade, a schema change that cannot migrate in place, or to rebuild from storage after a
Qdrant loss. The work is `app.services.reindexer.Reindexer` (shared with the worker's `reindex_collection` job).
Prints one JSON object on stdout; logs go to stderr. Audited (app/ops/audit_trail.py): exit 3 when the audit
bucket cannot be written, before anything is re-embedded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from app.core.logging import configure_logging
from app.ops.audit_trail import command_audit, run_audited
from app.services.factory import vector_index
from app.services.reindexer import Reindexer
from app.worker.settings import WorkerSettings, get_worker_settings
from app.worker.tasks import build_indexer


async def _main(settings: WorkerSettings, *, drop_old: bool) -> dict[str, Any]:
    vectors = vector_index(settings)
    indexer = build_indexer(settings, vectors=vectors, jobs=None)
    try:
        reindexer = Reindexer(
            storage=indexer.storage, vectors=vectors, embedder=indexer.embedder, batch=settings.worker_embed_batch
        )
        return asdict(await reindexer.run(drop_old=drop_old))
    finally:
        await indexer.embedder.aclose()
        await vectors.client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.reindex", description=__doc__.splitlines()[0])
    parser.add_argument("--drop-old", action="store_true", help="delete the previous version after the switch")
    args = parser.parse_args(argv)
    # The worker's settings: reindexing reads the pages bucket, so its S3 credentials are checked.
    settings = get_worker_settings()
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)

    def work(outcome: dict[str, Any]) -> int:
        result = asyncio.run(_main(settings, drop_old=args.drop_old))
        outcome.update(
            source=result.get("source"),
            new_collection=result.get("target"),
            copied=result.get("copied"),
            dropped_old=result.get("dropped_old"),
        )
        print(json.dumps(result))
        return 0

    audit = command_audit(settings, action="ops.reindex", target=settings.qdrant_collection, drop_old=args.drop_old)
    return run_audited(audit, work)


if __name__ == "__main__":
    raise SystemExit(main())
