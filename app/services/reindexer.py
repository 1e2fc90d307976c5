"""Re-embed every indexed page from object storage into a new collection version, then switch the alias.

Zero downtime: searches keep hitting the old version until the atomic switch. Pages written to the old version
while the copy runs are caught up before and after the switch. Used by `python -m app.ops.reindex` and by the
worker's arq job `reindex_collection` (admin API); it lives here, below both, so neither imports the other.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from app.services.embedder_client import EmbedderClient
from app.services.jobs import JobStore
from app.services.pooling import mean_pool
from app.services.storage import ObjectNotFound, PageStorage
from app.services.vectors import PageVectors, VectorIndex

log = logging.getLogger(__name__)
_INTERNAL = {"document_id", "page", "schema_version", "indexed_at"}


@dataclass
class ReindexResult:
    source: str
    target: str
    copied: int = 0
    missing_images: list[str] = field(default_factory=list)
    dropped_old: bool = False


class Reindexer:
    def __init__(
        self,
        *,
        storage: PageStorage,
        vectors: VectorIndex,
        embedder: EmbedderClient,
        batch: int = 8,
        jobs: JobStore | None = None,
        job_id: str | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch={batch}: must be >= 1")
        self.storage = storage
        self.vectors = vectors
        self.embedder = embedder
        self.batch = batch
        self.jobs = jobs
        self.job_id = job_id

    async def _ids(self, collection: str) -> set[str]:
        ids: set[str] = set()
        offset: Any = None
        while True:
            points, offset = await self.vectors.client.scroll(
                collection, limit=256, offset=offset, with_payload=False, with_vectors=False
            )
            ids.update(str(p.id) for p in points)
            if offset is None:
                return ids

    async def _copy_missing(self, source: str, target: str, result: ReindexResult, total: int) -> None:
        present = await self._ids(target)
        pending: list[dict[str, Any]] = []
        offset: Any = None
        while True:
            points, offset = await self.vectors.client.scroll(
                source, limit=self.batch * 4, offset=offset, with_payload=True, with_vectors=False
            )
            lost = set(result.missing_images)  # known missing images are reported once, not re-fetched per pass
            pending += [
                dict(p.payload or {})
                for p in points
                if str(p.id) not in present and (p.payload or {}).get("object_key") not in lost
            ]
            while len(pending) >= self.batch or (offset is None and pending):
                chunk, pending = pending[: self.batch], pending[self.batch :]
                await self._reembed(chunk, target, result)
                if self.jobs is not None and self.job_id:
                    await self.jobs.progress(self.job_id, done=result.copied, total=total, stage="reindexing")
            if offset is None:
                return

    async def _reembed(self, payloads: list[dict[str, Any]], target: str, result: ReindexResult) -> None:
        images: list[bytes] = []
        kept: list[dict[str, Any]] = []
        fetched = await asyncio.gather(
            *(self.storage.get_bytes(str(p.get("object_key"))) for p in payloads), return_exceptions=True
        )
        for payload, data in zip(payloads, fetched, strict=True):
            if isinstance(data, ObjectNotFound):
                result.missing_images.append(str(payload.get("object_key")))
                continue
            if isinstance(data, BaseException):
                raise data
            images.append(data)
            kept.append(payload)
        if not kept:
            return
        embedded = await self.embedder.embed_images(images)
        pages = []
        for payload, mv in zip(kept, embedded, strict=True):
            if mv.patch is None:
                raise RuntimeError("embedder returned an image embedding without a patch span")
            pooled = mean_pool(mv.vectors, mv.patch)
            pages.append(
                PageVectors(
                    document_id=str(payload["document_id"]),
                    page=int(payload["page"]),
                    original=mv.vectors,
                    rows=pooled.rows,
                    columns=pooled.columns,
                    payload={k: v for k, v in payload.items() if k not in _INTERNAL},
                )
            )
        result.copied += await self.vectors.upsert_pages(pages, collection=target)

    async def run(self, *, drop_old: bool = False) -> ReindexResult:
        source = await self.vectors.resolve()
        if source is None:
            raise RuntimeError(f"nothing to reindex: {self.vectors.alias!r} does not exist")
        target = await self.vectors.create_physical(await self.vectors.new_version_name())
        result = ReindexResult(source=source, target=target)
        total = await self.vectors.count(collection=source)
        log.info("reindex %s -> %s (%d pages)", source, target, total)
        await self._copy_missing(source, target, result, total)
        await self._copy_missing(source, target, result, total)  # pages added during the first pass
        await self.vectors.switch_alias(target)
        await self._copy_missing(source, target, result, total)  # writes that raced the switch
        if drop_old and source != self.vectors.alias:
            await self.vectors.client.delete_collection(source)
            result.dropped_old = True
        return result
