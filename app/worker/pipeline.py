"""One document through the pipeline: render -> (upload || embed) -> pool -> upsert, stages overlapping.

A render thread feeds pages into a bounded queue; the embed stage takes them in batches, starts the JPEG
uploads concurrently with the embedder call and passes the batch on; the write stage waits for the uploads,
pools and upserts while the next batch is already being embedded. Bounded queues keep memory flat whatever the
document size. Pages already in the index are skipped, so a retried job only does the remaining work, and
deterministic keys and point ids make redoing a page harmless.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from app.core.resilience import Resilience
from app.services import multivector_wire as wire
from app.services.embedder_client import EmbedderClient
from app.services.pooling import mean_pool
from app.services.storage import ObjectNotFound, PageStorage, PutItem, page_object_key
from app.services.vectors import PageVectors, VectorIndex
from app.worker import metrics
from app.worker.errors import JobCancelled, is_transient
from app.worker.render import PdfRejected, RenderedPage, open_pdf, render_pages

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class IndexRequest:
    job_id: str
    document_id: str
    object_key: str
    filename: str
    owner: str


@dataclass(frozen=True)
class IndexResult:
    pages_total: int
    pages_indexed: int
    pages_skipped: int
    seconds: float


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    dpi: int = 144
    jpeg_quality: int = 85
    max_side_px: int = 3000
    embed_batch: int = 4
    depth: int = 2
    max_pages: int = 500
    call_attempts: int = 3


class JobProgress(Protocol):
    """Where the pipeline reports progress and asks about cancellation (JobStore, or the worker's JobBook)."""

    async def progress(self, job_id: str, *, done: int, total: int, stage: str) -> Any: ...

    async def is_cancelled(self, job_id: str) -> bool: ...


class _Done:
    """End-of-stream marker between stages."""


DONE = _Done()


class Indexer:
    def __init__(
        self,
        *,
        storage: PageStorage,
        vectors: VectorIndex,
        embedder: EmbedderClient,
        jobs: JobProgress | None,
        options: PipelineOptions,
        resilience: Resilience | None = None,
        embed_timeout_s: float = 120.0,
    ) -> None:
        self.storage = storage
        self.vectors = vectors
        self.embedder = embedder
        self.jobs = jobs
        self.options = options
        # The embedder's circuit breaker (what the worker's health reports); None: plain retries only.
        self.resilience = resilience
        self.embed_timeout_s = embed_timeout_s

    async def _call(self, what: Callable[[], Awaitable[T]]) -> T:
        """Retry one dependency call on transient errors (short blips); longer outages fail the attempt."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.options.call_attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception(is_transient),
            reraise=True,
        ):
            with attempt:
                return await what()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _embed(self, images: list[bytes]) -> list[wire.Multivector]:
        """Embed under the embedder's breaker: while it is open (a restart, a cold start) attempts fail fast and
        the job backs off at its own level instead of hammering a service that is loading its model."""
        if self.resilience is None:
            return await self._call(lambda: self.embedder.embed_images(images))
        return await self.resilience.call(
            "embedder", lambda: self.embedder.embed_images(images), timeout_s=self.embed_timeout_s
        )

    async def _check_cancel(self, request: IndexRequest) -> None:
        if self.jobs is not None and await self.jobs.is_cancelled(request.job_id):
            raise JobCancelled(request.job_id)

    async def run(self, request: IndexRequest) -> IndexResult:
        started = time.perf_counter()
        try:
            pdf = await self._call(lambda: self.storage.get_bytes(request.object_key))
        except ObjectNotFound:
            raise PdfRejected(f"upload {request.object_key!r} is not in the bucket") from None
        document = await asyncio.to_thread(open_pdf, pdf, max_pages=self.options.max_pages)
        try:
            total = len(document)
            done = {int(p["page"]) for p in await self._call(lambda: self.vectors.document_pages(request.document_id))}
            skip = frozenset(n for n in done if 1 <= n <= total)
            await self._progress(request, len(skip), total, "rendering")
            indexed = await self._pipeline(request, document, total, skip)
        finally:
            document.close()
        return IndexResult(total, indexed, len(skip), time.perf_counter() - started)

    async def _progress(self, request: IndexRequest, done: int, total: int, stage: str) -> None:
        if self.jobs is not None:
            await self.jobs.progress(request.job_id, done=done, total=total, stage=stage)

    async def _pipeline(self, request: IndexRequest, document: Any, total: int, skip: frozenset[int]) -> int:
        opts = self.options
        loop = asyncio.get_running_loop()
        rendered: asyncio.Queue[RenderedPage | _Done | Exception] = asyncio.Queue(maxsize=opts.embed_batch * opts.depth)
        embedded: asyncio.Queue[tuple[list[RenderedPage], list[wire.Multivector], asyncio.Task[Any]] | _Done] = (
            asyncio.Queue(maxsize=opts.depth)
        )
        stop = threading.Event()

        def produce() -> None:
            pages = render_pages(
                document, dpi=opts.dpi, jpeg_quality=opts.jpeg_quality, max_side_px=opts.max_side_px, skip=skip
            )
            for item in _chain(pages):
                future = asyncio.run_coroutine_threadsafe(rendered.put(item), loop)
                while True:
                    if stop.is_set():
                        future.cancel()
                        return
                    try:
                        future.result(timeout=0.2)
                        break
                    except TimeoutError:
                        continue

        async def embed_stage() -> None:
            finished = False
            while not finished:
                batch: list[RenderedPage] = []
                while len(batch) < opts.embed_batch:
                    item = await rendered.get()
                    if isinstance(item, Exception):
                        raise item
                    if isinstance(item, _Done):
                        finished = True
                        break
                    batch.append(item)
                if not batch:
                    break
                await self._check_cancel(request)
                uploads = asyncio.create_task(
                    self._call(
                        lambda b=batch: self.storage.put_many(  # type: ignore[misc]
                            [PutItem(page_object_key(request.document_id, p.number), p.jpeg, "image/jpeg") for p in b]
                        )
                    )
                )
                t0 = time.perf_counter()
                try:
                    vectors = await self._embed([p.jpeg for p in batch])
                except BaseException:
                    uploads.cancel()
                    raise
                metrics.STAGE_SECONDS.labels("embed").observe(time.perf_counter() - t0)
                await embedded.put((batch, vectors, uploads))
            await embedded.put(DONE)

        count = len(skip)
        indexed = 0

        async def write_stage() -> None:
            nonlocal count, indexed
            while True:
                item = await embedded.get()
                if isinstance(item, _Done):
                    return
                batch, vectors, uploads = item
                t0 = time.perf_counter()
                await uploads
                metrics.STAGE_SECONDS.labels("upload_wait").observe(time.perf_counter() - t0)
                pages = []
                for page, mv in zip(batch, vectors, strict=True):
                    if mv.patch is None:
                        raise RuntimeError("embedder returned an image embedding without a patch span")
                    pooled = mean_pool(mv.vectors, mv.patch)
                    pages.append(
                        PageVectors(
                            document_id=request.document_id,
                            page=page.number,
                            original=mv.vectors,
                            rows=pooled.rows,
                            columns=pooled.columns,
                            payload={
                                "filename": request.filename,
                                "owner": request.owner,
                                "object_key": page_object_key(request.document_id, page.number),
                                "source_key": request.object_key,
                                "width": page.width,
                                "height": page.height,
                                "job_id": request.job_id,
                            },
                        )
                    )
                t0 = time.perf_counter()
                await self._call(lambda p=pages: self.vectors.upsert_pages(p))  # type: ignore[misc]
                metrics.STAGE_SECONDS.labels("upsert").observe(time.perf_counter() - t0)
                metrics.PAGES.inc(len(pages))
                count += len(pages)
                indexed += len(pages)
                await self._progress(request, count, total, "indexing")

        producer = loop.run_in_executor(None, produce)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(embed_stage())
                group.create_task(write_stage())
        except BaseExceptionGroup as group_error:
            # Surface the first real cause (a TaskGroup wraps it) so retry classification sees it.
            first = group_error.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            stop.set()
            await producer
        return indexed


def _chain(pages: Any) -> Any:
    """Pages, then DONE; a render failure travels down the queue as the exception itself."""
    try:
        yield from pages
    except Exception as exc:
        yield exc
        return
    yield DONE
