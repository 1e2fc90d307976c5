"""Uploads and indexing jobs: `POST /index`, `GET /jobs/{id}`, `POST /jobs/{id}/cancel`, `GET /progress/stream/{id}`."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from sse_starlette.sse import EventSourceResponse

from app.api.auth import Principal
from app.api.deps import PROTECTED, CurrentUser, ServicesDep, limit_upload
from app.api.responses import protected
from app.api.schemas import JobAccepted, JobView
from app.api.uploads import UploadSession
from app.core.logging import get_logger
from app.core.metrics import INDEX_JOBS, INDEX_UPLOADS
from app.services.jobs import JobStatus, enqueue_index

log = get_logger(__name__)
router = APIRouter(tags=["indexing"], dependencies=PROTECTED)

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", max_length=64)]

_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        # maxItems is MAX_UPLOAD_FILES, a setting: app.api.openapi fills it in per app.
                        "files": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


def manifest_key(document_id: str) -> str:
    return f"uploads/{document_id}/manifest.json"


def _job_view(status: JobStatus) -> dict[str, Any]:
    view = status.to_dict()
    view.pop("owner", None)
    return view


async def _visible_job(services: ServicesDep, job_id: str, user: Principal) -> JobStatus:
    status = await services.resilience.call(
        "redis", lambda: services.jobs.get(job_id), timeout_s=services.settings.redis_timeout_s * 2
    )
    # Someone else's job is "not found": its existence is not the caller's business.
    if status is None or (status.owner != user.sub and not user.has_role(services.settings.auth_admin_role)):
        raise HTTPException(404, "job not found")
    return status


@router.post(
    "/index",
    status_code=202,
    response_model=JobAccepted,
    dependencies=[Depends(limit_upload)],
    openapi_extra=_MULTIPART_BODY,
    responses=protected(
        400,
        415,
        422,
        _413="too large, or too many files",
        _429="rate limit, or the identity's daily upload quota (pages or bytes) exceeded",
        _415="not multipart, or a file is not a PDF",
        _422="no file, a corrupt PDF, too many pages, or rejected by the malware scan",
    ),
)
async def index(request: Request, user: CurrentUser, services: ServicesDep) -> JobAccepted:
    settings = services.settings
    async with UploadSession(
        max_file_bytes=settings.max_upload_bytes,
        max_files=settings.max_upload_files,
        max_pages=settings.max_pdf_pages,
        scanner=services.scanner,
        slots=services.upload_slots,
    ) as session:
        boundary = session.check_headers(request.headers.get("content-type"), request.headers.get("content-length"))
        # One of this process's upload slots (its /tmp is sized for them), else 503 before the body is read.
        await session.admit()
        # The identity's daily upload quota (app/api/quotas.py): spent already -> 429 before the body is read.
        await services.resilience.call(
            "redis", lambda: services.quotas.check_upload_headroom(user), timeout_s=settings.redis_timeout_s * 2
        )
        files = await session.receive(boundary, request.stream())
        await session.validate(files)
        pages, size_bytes = sum(f.pages for f in files), sum(f.size for f in files)
        # Reserved before anything is stored (all or nothing, 429 naming the quota); refunded below on failure.
        quota = await services.resilience.call(
            "redis",
            lambda: services.quotas.charge_upload(user, pages=pages, size_bytes=size_bytes),
            timeout_s=settings.redis_timeout_s * 2,
            idempotent=False,
        )

        stored: list[str] = []
        jobs: list[dict[str, str]] = []
        try:
            for item in files:
                document_id = uuid.uuid4().hex
                job_id = uuid.uuid4().hex
                object_key = f"uploads/{document_id}/{item.filename}"
                data = item.path.read_bytes()
                stored.append(document_id)
                await services.resilience.call(
                    "storage",
                    partial(services.storage.put_bytes, object_key, data, "application/pdf"),
                    timeout_s=settings.s3_timeout_s * 2,
                )
                manifest = {
                    "document_id": document_id,
                    "filename": item.filename,
                    "owner": user.sub,
                    "object_key": object_key,
                    "pages": item.pages,
                    "size_bytes": item.size,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "uploaded_at": datetime.now(UTC).isoformat(),
                    "job_id": job_id,
                }
                manifest_body = json.dumps(manifest).encode()
                await services.resilience.call(
                    "storage",
                    partial(services.storage.put_bytes, manifest_key(document_id), manifest_body, "application/json"),
                    timeout_s=settings.s3_timeout_s * 2,
                )
                jobs.append(
                    {"job_id": job_id, "document_id": document_id, "filename": item.filename, "key": object_key}
                )
            await services.resilience.call(
                "audit",
                lambda: services.audit.record(
                    actor=user.sub,
                    action="document.upload",
                    target=",".join(j["document_id"] for j in jobs),
                    files=[{"document_id": j["document_id"], "filename": j["filename"]} for j in jobs],
                ),
                timeout_s=settings.s3_timeout_s * 2,
            )
            for job in jobs:
                await services.resilience.call(
                    "redis",
                    partial(
                        enqueue_index,
                        services.redis,
                        services.jobs,
                        job_id=job["job_id"],
                        document_id=job["document_id"],
                        object_key=job["key"],
                        filename=job["filename"],
                        owner=user.sub,
                    ),
                    timeout_s=settings.redis_timeout_s * 3,
                    idempotent=False,
                )
                INDEX_JOBS.inc()
        except BaseException:
            try:
                await services.quotas.refund(quota)
            except Exception as exc:
                log.warning("upload_quota_refund_failed", error=type(exc).__name__)
            for document_id in stored:
                try:
                    await services.storage.delete_prefix(f"uploads/{document_id}/")
                except Exception as exc:
                    log.warning("upload_cleanup_failed", document_id=document_id, error=type(exc).__name__)
            raise
    INDEX_UPLOADS.labels(outcome="accepted").inc(len(jobs))
    services.quotas.record_upload(user, pages=pages, size_bytes=size_bytes)
    log.info("upload_accepted", files=len(jobs), documents=[j["document_id"] for j in jobs])
    return JobAccepted(job_id=jobs[0]["job_id"], jobs=[{k: v for k, v in j.items() if k != "key"} for j in jobs])


@router.get("/jobs/{job_id}", response_model=JobView, responses=protected(404, 422, _404="no such job"))
async def get_job(job_id: JobId, user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    return _job_view(await _visible_job(services, job_id, user))


@router.post("/jobs/{job_id}/cancel", response_model=JobView, responses=protected(404, 422, _404="no such job"))
async def cancel_job(job_id: JobId, user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    await _visible_job(services, job_id, user)
    await services.jobs.request_cancel(job_id)
    status = await _visible_job(services, job_id, user)
    return _job_view(status)


@router.get(
    "/progress/stream/{job_id}",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **protected(404, 422, _404="no such job")},
)
async def progress_stream(job_id: JobId, user: CurrentUser, services: ServicesDep) -> EventSourceResponse:
    await _visible_job(services, job_id, user)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for status in services.jobs.watch(job_id, timeout_s=15.0):
            yield {"event": "progress", "data": json.dumps(_job_view(status))}
            if status.terminal:
                yield {"event": "done", "data": json.dumps({"state": status.state})}
                return

    return EventSourceResponse(events(), ping=15, send_timeout=30)
