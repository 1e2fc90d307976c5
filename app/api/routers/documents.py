"""Document lifecycle: `GET /documents/{id}`, `GET /documents/{id}/export`, `DELETE /documents/{id}`.

The document's owner or an admin may use these. Deletes and exports are audited; a delete removes the vectors,
the page images and the upload (the whole `uploads/<id>/` and `pages/<id>/` prefixes).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app.api.auth import Principal
from app.api.container import AppServices
from app.api.deps import PROTECTED, CurrentUser, ServicesDep
from app.api.responses import protected
from app.api.routers.index import manifest_key
from app.api.schemas import DeletedView, DocumentExport, DocumentView
from app.services.storage import ObjectNotFound, document_prefixes

router = APIRouter(prefix="/documents", tags=["documents"], dependencies=PROTECTED)

_RESPONSES = protected(404, 422, _404="no such document, or not the caller's")
DocumentId = Annotated[str, Path(pattern=r"^[a-f0-9]{32}$", description="document id (32 hex characters)")]


async def _manifest(services: AppServices, document_id: str, user: Principal) -> dict[str, Any]:
    try:
        raw = await services.resilience.call(
            "storage",
            lambda: services.storage.get_bytes(manifest_key(document_id)),
            timeout_s=services.settings.s3_timeout_s,
        )
    except ObjectNotFound:
        raise HTTPException(404, "document not found") from None
    manifest: dict[str, Any] = json.loads(raw)
    if manifest.get("owner") != user.sub and not user.has_role(services.settings.auth_admin_role):
        raise HTTPException(404, "document not found")
    return manifest


async def _view(services: AppServices, manifest: dict[str, Any]) -> DocumentView:
    document_id = manifest["document_id"]
    indexed = await services.resilience.call(
        "qdrant", lambda: services.vectors.count(document_id=document_id), timeout_s=services.settings.qdrant_timeout_s
    )
    job = await services.jobs.get(manifest.get("job_id", "")) if manifest.get("job_id") else None
    return DocumentView(
        document_id=document_id,
        filename=manifest.get("filename", ""),
        owner=manifest.get("owner", ""),
        pages=int(manifest.get("pages", 0)),
        indexed_pages=indexed,
        size_bytes=int(manifest.get("size_bytes", 0)),
        sha256=manifest.get("sha256", ""),
        uploaded_at=manifest.get("uploaded_at", ""),
        job={k: v for k, v in job.to_dict().items() if k != "owner"} if job else None,
    )


@router.get("/{document_id}", response_model=DocumentView, responses=_RESPONSES)
async def get_document(document_id: DocumentId, user: CurrentUser, services: ServicesDep) -> DocumentView:
    return await _view(services, await _manifest(services, document_id, user))


@router.get("/{document_id}/export", response_model=DocumentExport, responses=_RESPONSES)
async def export_document(document_id: DocumentId, user: CurrentUser, services: ServicesDep) -> DocumentExport:
    """Everything stored about a document (data-subject access): metadata, page payloads, download links."""
    manifest = await _manifest(services, document_id, user)
    await services.resilience.call(
        "audit",
        lambda: services.audit.record(actor=user.sub, action="document.export", target=document_id),
        timeout_s=services.settings.s3_timeout_s * 2,
    )
    pages = await services.resilience.call(
        "qdrant",
        lambda: services.vectors.document_pages(document_id),
        timeout_s=services.settings.qdrant_timeout_s,
    )
    out_pages = []
    for payload in pages:
        key = payload.get("object_key") or payload.get("image_key")
        url = services.storage.presign_get(key) if isinstance(key, str) and key else None
        out_pages.append({**payload, "image_url": url})
    return DocumentExport(
        document=await _view(services, manifest),
        upload_url=services.storage.presign_get(manifest["object_key"]) if manifest.get("object_key") else None,
        pages=out_pages,
    )


@router.delete("/{document_id}", response_model=DeletedView, responses=_RESPONSES)
async def delete_document(document_id: DocumentId, user: CurrentUser, services: ServicesDep) -> DeletedView:
    manifest = await _manifest(services, document_id, user)
    timeout = services.settings.s3_timeout_s * 2
    # Intent first: if the audit log cannot record it, nothing is deleted.
    await services.resilience.call(
        "audit",
        lambda: services.audit.record(
            actor=user.sub, action="document.delete", target=document_id, outcome="requested"
        ),
        timeout_s=timeout,
    )
    if manifest.get("job_id"):
        await services.jobs.request_cancel(manifest["job_id"])
    vectors = await services.resilience.call(
        "qdrant", lambda: services.vectors.delete_document(document_id), timeout_s=services.settings.qdrant_timeout_s
    )
    objects = 0
    for prefix in document_prefixes(document_id):
        objects += await services.resilience.call(
            "storage", partial(services.storage.delete_prefix, prefix), timeout_s=timeout
        )
    services._version = (0.0, "")
    await services.resilience.call(
        "audit",
        lambda: services.audit.record(
            actor=user.sub, action="document.delete", target=document_id, vectors=vectors, objects=objects
        ),
        timeout_s=timeout,
    )
    return DeletedView(document_id=document_id, deleted_vectors=vectors, deleted_objects=objects)
