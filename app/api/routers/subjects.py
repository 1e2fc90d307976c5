"""Data-subject requests (access, export, erasure) for one token `sub`, admin only: `/admin/subjects/{subject}`.

The work is app/services/dsar.py (shared with `python -m app.ops.dsar`). Every call is audited with
`audited`: `started` before anything is read or deleted (no audit, no action: 503), `succeeded`/`failed` after,
with the counts. Runbook: docs/runbooks/data-lifecycle-requests.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from app.api.container import AppServices
from app.api.deps import PROTECTED, AdminUser, ServicesDep, require_admin
from app.api.responses import admin as admin_responses
from app.core.audit import audited
from app.services.dsar import SubjectData, check_subject

router = APIRouter(prefix="/admin/subjects", tags=["admin"], dependencies=[*PROTECTED, Depends(require_admin)])

Subject = Annotated[
    str, Path(min_length=1, max_length=256, description="the data subject: the `sub` claim of the uploader's token")
]


def _subject_data(services: AppServices) -> SubjectData:
    return SubjectData(
        storage=services.storage, vectors=services.vectors, jobs=services.jobs, cache_prefix=services.cache.prefix
    )


def _checked(subject: str) -> str:
    try:
        return check_subject(subject)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/{subject}/data", responses=admin_responses(422))
async def subject_data(subject: Subject, user: AdminUser, services: ServicesDep) -> dict[str, Any]:
    """Everything stored about the subject: documents (manifest, S3 objects, vector counts), jobs, dead letters."""
    subject = _checked(subject)
    async with audited(services.audit, actor=user.sub, action="admin.subject.list", target=subject) as outcome:
        inventory = await _subject_data(services).inventory(subject)
        outcome.update(inventory.summary())
    return inventory.to_dict()


@router.get("/{subject}/export", responses=admin_responses(422))
async def export_subject(subject: Subject, user: AdminUser, services: ServicesDep) -> dict[str, Any]:
    """The inventory plus every page payload and a presigned GET URL per stored object (expire after PRESIGN_TTL_S)."""
    subject = _checked(subject)
    async with audited(services.audit, actor=user.sub, action="admin.subject.export", target=subject) as outcome:
        exported = await _subject_data(services).export(subject)
        outcome.update(exported["summary"])
    return exported


@router.delete("/{subject}", responses=admin_responses(422))
async def delete_subject(subject: Subject, user: AdminUser, services: ServicesDep) -> dict[str, Any]:
    """Erase the subject's documents (vectors, uploads, page images), job records, dead letters; flush the cache."""
    subject = _checked(subject)
    async with audited(services.audit, actor=user.sub, action="admin.subject.delete", target=subject) as outcome:
        report = await _subject_data(services).delete(subject)
        services._version = (0.0, "")  # the index changed: cached responses' version must be re-read
        outcome.update(
            documents=report.documents, vectors=report.vectors, objects=report.objects, complete=report.complete
        )
    return report.__dict__
