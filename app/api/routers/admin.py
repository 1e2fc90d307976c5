"""Admin-only maintenance under `/admin/`: every route, reads included, is one `audited` action (app/core/audit.py).

`started` is written before the route acts (no audit, no action: 503), `succeeded`/`failed` after it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from app.api.deps import PROTECTED, AdminUser, ServicesDep, require_admin
from app.api.responses import admin as admin_responses
from app.core.audit import audited
from app.services.jobs import QUEUE_NAME, REINDEX_FUNCTION

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: object) -> object:
    """Only the declared `format: date` (YYYY-MM-DD): pydantic alone would also take `0` as a Unix timestamp."""
    if value is None or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[*PROTECTED, Depends(require_admin)])


@router.get("/dead-letters", responses=admin_responses(422))
async def dead_letters(
    user: AdminUser, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    async with audited(services.audit, actor=user.sub, action="admin.dead_letters.read", target="dead-letters") as o:
        records = await services.resilience.call(
            "redis", lambda: services.jobs.dead_letters(limit), timeout_s=services.settings.redis_timeout_s * 2
        )
        o["returned"] = len(records)
    return records


@router.post("/collection/ensure", responses=admin_responses())
async def ensure_collection(user: AdminUser, services: ServicesDep) -> dict[str, Any]:
    """Create or migrate the Qdrant collection to this release's schema (idempotent)."""
    alias = services.settings.qdrant_collection
    async with audited(services.audit, actor=user.sub, action="admin.collection.ensure", target=alias) as o:
        result = await services.resilience.call(
            "qdrant", services.vectors.ensure_collection, timeout_s=services.settings.qdrant_timeout_s * 3
        )
        out: dict[str, Any] = {
            "alias": result.alias,
            "collection": result.collection,
            "from_version": result.from_version,
            "to_version": result.to_version,
            "created": result.created,
        }
        o.update(out)
    return out


@router.post("/reindex", status_code=202, responses=admin_responses())
async def reindex(user: AdminUser, services: ServicesDep) -> dict[str, str]:
    """Queue a rebuild of the collection into a new version; the alias switches when it is complete."""
    job_id = uuid.uuid4().hex
    target = services.settings.qdrant_collection
    async with audited(services.audit, actor=user.sub, action="admin.reindex", target=target, job_id=job_id):
        await services.resilience.call(
            "redis",
            lambda: services.redis.enqueue_job(REINDEX_FUNCTION, job_id=job_id, _job_id=job_id, _queue_name=QUEUE_NAME),
            timeout_s=services.settings.redis_timeout_s * 3,
            idempotent=False,
        )
    return {"job_id": job_id}


@router.post("/cache/flush", responses=admin_responses())
async def flush_cache(user: AdminUser, services: ServicesDep) -> dict[str, int]:
    deleted = 0
    async with audited(services.audit, actor=user.sub, action="admin.cache.flush", target="response-cache") as o:
        async for key in services.redis.scan_iter(match=f"{services.cache.prefix}:*", count=500):
            deleted += int(await services.redis.delete(key))
        o["deleted"] = deleted
    return {"deleted": deleted}


@router.get("/audit", responses=admin_responses(422))
async def audit_events(
    user: AdminUser,
    services: ServicesDep,
    day: Annotated[
        date | None, BeforeValidator(_iso_day), Query(description="UTC day (YYYY-MM-DD), default today")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Audit events of one day (newest last). Reading the audit log is itself audited."""
    day = day or datetime.now(UTC).date()
    async with audited(services.audit, actor=user.sub, action="admin.audit.read", target=f"{day:%Y-%m-%d}") as o:
        keys = await services.resilience.call(
            "storage",
            lambda: services.audit_storage.list_keys(f"audit/{day:%Y/%m/%d}/"),
            timeout_s=services.settings.s3_timeout_s * 2,
        )
        events = [json.loads(await services.audit_storage.get_bytes(key)) for key in sorted(keys)[-limit:]]
        o["returned"] = len(events)
    return events


@router.get("/breakers", responses=admin_responses())
async def breakers(user: AdminUser, services: ServicesDep) -> dict[str, str]:
    async with audited(services.audit, actor=user.sub, action="admin.breakers.read", target="breakers"):
        return {
            name: services.resilience.state(name) for name in ("qdrant", "storage", "embedder", "llm", "redis", "audit")
        }
