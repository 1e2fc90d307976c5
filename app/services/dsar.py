"""Everything stored about one data subject (the token `sub` that uploaded): found, exported and erased together.

Ownership is recorded in three places, all keyed on the uploader's `sub` since the first release:
- the upload's `uploads/<document_id>/manifest.json` (`owner`), written by `POST /index` before anything else;
- every page's Qdrant payload (`owner`, keyword-indexed), written by the worker;
- the job record in Redis (`visionrag:job:<id>`, field `owner`), and arq's own job/result keys for that id, and
  the dead-letter list entries (`request.owner`).
A document is the subject's when any of those says so (an upload whose indexing never ran has no vectors; a
manifest lost to a partial delete still leaves vectors), so the inventory is the union of the three.

Cached responses (`visionrag:cache:*`) are keyed by one-way hashes of the caller's scope and query: a cached chat
answer cannot be attributed to a subject, and another caller's cached search may quote the subject's pages. Erasure
therefore flushes the whole response cache (an optimisation with a minutes-long TTL); the inventory counts the
cached responses that name one of the subject's documents.

What this module cannot reach (noncurrent S3 versions, replicas, Qdrant snapshots, backups, the audit log) and how
long each stays is listed in docs/runbooks/data-lifecycle-requests.md. Used by the admin routes
(app/api/routers/subjects.py) and `python -m app.ops.dsar`; the callers write the audit events.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.services.jobs import QUEUE_NAME, JobStore
from app.services.storage import ObjectNotFound, PageStorage, document_prefixes
from app.services.vectors import VectorIndex

MANIFEST_NAME = "manifest.json"
UPLOADS_PREFIX = "uploads/"
CACHE_PREFIX = "visionrag:cache"
# arq's key prefixes (arq.constants): the job's pickled arguments (filename, owner) and its result.
ARQ_KEY_PREFIXES = ("arq:job:", "arq:result:", "arq:retry:", "arq:in-progress:")


@dataclass
class SubjectDocument:
    document_id: str
    found_in: list[str] = field(default_factory=list)  # manifest / vectors / jobs
    manifest: dict[str, Any] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)  # S3 keys under uploads/<id>/ and pages/<id>/
    vectors: int = 0


@dataclass
class SubjectInventory:
    subject: str
    documents: list[SubjectDocument] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    cache_entries: int = 0

    @property
    def empty(self) -> bool:
        return not (self.documents or self.jobs or self.dead_letters or self.cache_entries)

    def summary(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "documents": len(self.documents),
            "objects": sum(len(d.objects) for d in self.documents),
            "vectors": sum(d.vectors for d in self.documents),
            "jobs": len(self.jobs),
            "dead_letters": len(self.dead_letters),
            "cache_entries": self.cache_entries,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


@dataclass
class SubjectDeletion:
    subject: str
    documents: list[str] = field(default_factory=list)
    vectors: int = 0
    objects: int = 0
    jobs: int = 0
    redis_keys: int = 0
    dead_letters: int = 0
    cache_entries: int = 0
    # Jobs still running when the delete ran: cancelled, their records kept until the worker stops (run again).
    pending_jobs: list[str] = field(default_factory=list)
    complete: bool = False
    remaining: dict[str, Any] = field(default_factory=dict)


def check_subject(subject: str) -> str:
    """A `sub` as tokens carry it; refuse what could only be a mistake (empty, glob-only, absurdly long)."""
    if not subject or not subject.strip() or len(subject) > 256 or subject in {"*", "?"}:
        raise ValueError(f"subject {subject!r}: must be the token's `sub`, 1..256 characters")
    return subject


class SubjectData:
    def __init__(
        self, *, storage: PageStorage, vectors: VectorIndex, jobs: JobStore, cache_prefix: str = CACHE_PREFIX
    ) -> None:
        self.storage = storage
        self.vectors = vectors
        self.jobs = jobs
        self.redis = jobs.redis
        self.cache_prefix = cache_prefix

    # --- finding ------------------------------------------------------------------------------------------------
    async def _manifests(self, subject: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for key in await self.storage.list_keys(UPLOADS_PREFIX):
            parts = key.split("/")
            if len(parts) != 3 or parts[2] != MANIFEST_NAME:
                continue
            try:
                manifest = json.loads(await self.storage.get_bytes(key))
            except (ObjectNotFound, ValueError):
                continue
            if manifest.get("owner") == subject:
                found[parts[1]] = manifest
        return found

    async def _vector_documents(self, subject: str) -> dict[str, int]:
        if await self.vectors.resolve() is None:
            return {}
        counts: dict[str, int] = {}
        async for payload, _ in self.vectors.iter_points(owner=subject, batch=256):
            doc = str(payload.get("document_id", ""))
            counts[doc] = counts.get(doc, 0) + 1
        return counts

    async def _job_records(self, subject: str) -> list[dict[str, Any]]:
        records = []
        async for raw_key in self.redis.scan_iter(match=f"{self.jobs.prefix}*", count=500, _type="HASH"):
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            status = await self.jobs.get(key.removeprefix(self.jobs.prefix))
            if status is not None and status.owner == subject:
                records.append(status.to_dict())
        return sorted(records, key=lambda r: r.get("created_at", 0.0))

    async def _dead_letters(self, subject: str) -> list[tuple[Any, dict[str, Any]]]:
        raw: list[Any] = await self.redis.lrange(self.jobs.dead_letter_key, 0, -1)  # type: ignore[misc]
        out = []
        for item in raw:
            record = json.loads(item)
            if (record.get("request") or {}).get("owner") == subject:
                out.append((item, record))
        return out

    async def _cache_mentions(self, document_ids: set[str]) -> int:
        if not document_ids:
            return 0
        count = 0
        async for key in self.redis.scan_iter(match=f"{self.cache_prefix}:*", count=500):
            value = await self.redis.get(key)
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")
            count += any(doc in text for doc in document_ids)
        return count

    async def inventory(self, subject: str) -> SubjectInventory:
        check_subject(subject)
        manifests = await self._manifests(subject)
        vector_docs = await self._vector_documents(subject)
        jobs = await self._job_records(subject)
        job_docs = {str(j["document_id"]) for j in jobs if j.get("document_id") not in ("", "*")}
        documents = []
        for doc in sorted(set(manifests) | set(vector_docs) | job_docs):
            sources = (("manifest", manifests), ("vectors", vector_docs), ("jobs", job_docs))
            found_in = [name for name, where in sources if doc in where]
            objects: list[str] = []
            for prefix in document_prefixes(doc):
                objects += await self.storage.list_keys(prefix)
            documents.append(
                SubjectDocument(
                    document_id=doc,
                    found_in=found_in,
                    manifest=manifests.get(doc, {}),
                    objects=sorted(objects),
                    vectors=vector_docs.get(doc, 0),
                )
            )
        dead = [record for _, record in await self._dead_letters(subject)]
        cache = await self._cache_mentions({d.document_id for d in documents})
        return SubjectInventory(subject=subject, documents=documents, jobs=jobs, dead_letters=dead, cache_entries=cache)

    # --- export -------------------------------------------------------------------------------------------------
    async def export(self, subject: str, *, presign: bool = True) -> dict[str, Any]:
        """The inventory plus every page payload, and a presigned GET URL per stored object (when `presign`)."""
        inventory = await self.inventory(subject)
        out = inventory.to_dict()
        for entry, document in zip(out["documents"], inventory.documents, strict=True):
            entry["pages"] = await self.vectors.document_pages(document.document_id) if document.vectors else []
            if presign:
                entry["object_urls"] = {key: self.storage.presign_get(key) for key in document.objects}
        return out

    async def write_archive(self, subject: str, path: Path) -> dict[str, Any]:
        """A zip for the requester: `subject.json` (the export without URLs) and every stored object's bytes."""
        data = await self.export(subject, presign=False)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("subject.json", json.dumps(data, indent=2, default=str))
            for document in data["documents"]:
                for key in document["objects"]:
                    try:
                        archive.writestr(f"objects/{key}", await self.storage.get_bytes(key))
                    except ObjectNotFound:
                        continue  # deleted between listing and reading
        return data["summary"]

    # --- erasure ------------------------------------------------------------------------------------------------
    async def _delete_pass(self, inventory: SubjectInventory, report: SubjectDeletion) -> None:
        for job in inventory.jobs:
            await self.jobs.request_cancel(str(job["job_id"]))
        for document in inventory.documents:
            if document.document_id not in report.documents:
                report.documents.append(document.document_id)
            report.vectors += await self.vectors.delete_document(document.document_id)
            for prefix in document_prefixes(document.document_id):
                report.objects += await self.storage.delete_prefix(prefix)
        report.pending_jobs = []
        for job in inventory.jobs:
            job_id = str(job["job_id"])
            status = await self.jobs.get(job_id)
            if status is not None and not status.terminal:
                report.pending_jobs.append(job_id)  # the worker is on it: it stops at the next batch
                continue
            record = f"{self.jobs.prefix}{job_id}"
            keys = [record, f"{record}:cancel"]
            keys += [f"{prefix}{job_id}" for prefix in ARQ_KEY_PREFIXES]
            report.redis_keys += int(await self.redis.delete(*keys))
            await self.redis.zrem(QUEUE_NAME, job_id)
            report.jobs += 1
        for raw, _ in await self._dead_letters(inventory.subject):
            report.dead_letters += int(await self.redis.lrem(self.jobs.dead_letter_key, 0, raw))  # type: ignore[misc]
        async for key in self.redis.scan_iter(match=f"{self.cache_prefix}:*", count=500):
            report.cache_entries += int(await self.redis.delete(key))

    async def delete(self, subject: str) -> SubjectDeletion:
        """Erase everything the inventory finds; a second pass catches what a racing worker wrote meanwhile."""
        report = SubjectDeletion(subject=check_subject(subject))
        # At most two passes; the inventory after the last one (or the first empty one) is what remains. An
        # inventory reads every upload manifest, so an empty one is not taken twice.
        for passes in range(3):
            remaining = await self.inventory(subject)
            if remaining.empty or passes == 2:
                break
            await self._delete_pass(remaining, report)
        report.complete = remaining.empty
        report.remaining = {} if remaining.empty else remaining.summary()
        return report
