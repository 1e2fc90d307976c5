"""arq job functions and the worker's startup/shutdown (clients built from WorkerSettings)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pypdfium2 as pdfium
import structlog
from arq import Retry

from app.core.logging import request_id_var
from app.services.embedder_client import EmbedderClient, EmbedderRejected
from app.services.factory import page_storage, redis_settings, vector_index
from app.services.jobs import INDEX_FUNCTION, REINDEX_FUNCTION, JobStore
from app.services.reindexer import Reindexer
from app.services.storage import document_prefixes
from app.services.vectors import VectorIndex
from app.worker import metrics
from app.worker.errors import JobCancelled
from app.worker.pipeline import Indexer, IndexRequest, PipelineOptions
from app.worker.render import PdfRejected
from app.worker.settings import WorkerSettings, get_worker_settings

log = logging.getLogger(__name__)
PERMANENT = (PdfRejected, EmbedderRejected, pdfium.PdfiumError, ValueError)


def build_indexer(settings: WorkerSettings, *, vectors: VectorIndex | None = None, jobs: JobStore | None) -> Indexer:
    storage = page_storage(settings)
    if vectors is None:
        vectors = vector_index(settings)
    embedder = EmbedderClient(
        settings.embedder_url,
        timeout_s=settings.embedder_timeout_s,
        transport=settings.embedder_transport,
        max_batch=settings.worker_embed_batch,
    )
    options = PipelineOptions(
        dpi=settings.worker_render_dpi,
        jpeg_quality=settings.worker_jpeg_quality,
        max_side_px=settings.worker_max_side_px,
        embed_batch=settings.worker_embed_batch,
        depth=settings.worker_pipeline_depth,
        max_pages=settings.worker_max_pages,
        call_attempts=settings.worker_call_attempts,
    )
    return Indexer(storage=storage, vectors=vectors, embedder=embedder, jobs=jobs, options=options)


async def startup(ctx: dict[str, Any]) -> None:
    settings: WorkerSettings = ctx.setdefault("settings", get_worker_settings())
    ctx["jobs"] = JobStore(ctx["redis"], ttl_s=settings.worker_job_ttl_s)
    if "indexer" not in ctx:
        ctx["indexer"] = build_indexer(settings, jobs=ctx["jobs"])
    elif ctx["indexer"].jobs is None:
        ctx["indexer"].jobs = ctx["jobs"]
    vectors: VectorIndex = ctx["indexer"].vectors
    if not await vectors.ping():
        if settings.environment != "dev":
            raise RuntimeError(
                f"Qdrant collection {vectors.alias!r} is missing: run `python -m app.ops.collection migrate` first"
            )
        await vectors.ensure_collection()


async def shutdown(ctx: dict[str, Any]) -> None:
    indexer: Indexer | None = ctx.get("indexer")
    if indexer is not None:
        await indexer.embedder.aclose()


async def index_document(
    ctx: dict[str, Any],
    *,
    job_id: str,
    document_id: str,
    object_key: str,
    filename: str,
    owner: str,
    request_id: str | None = None,
) -> dict[str, Any]:
    """arq job. `request_id` is the API request that enqueued it (None from older APIs and from the CLI)."""
    # arq runs every job in its own asyncio task, so what is bound here is seen by this job's log lines only.
    context: dict[str, Any] = {"job_id": job_id, "document_id": document_id}
    if request_id:
        context["request_id"] = request_id
    with structlog.contextvars.bound_contextvars(**context):
        token = request_id_var.set(request_id)
        try:
            log.info("index job started (attempt %s)", ctx.get("job_try", 1))
            result = await _index_document(
                ctx, job_id=job_id, document_id=document_id, object_key=object_key, filename=filename, owner=owner
            )
            log.info("index job ended: %s", result["state"])
            return result
        finally:
            request_id_var.reset(token)


async def _index_document(
    ctx: dict[str, Any], *, job_id: str, document_id: str, object_key: str, filename: str, owner: str
) -> dict[str, Any]:
    settings: WorkerSettings = ctx["settings"]
    jobs: JobStore = ctx["jobs"]
    indexer: Indexer = ctx["indexer"]
    attempt = int(ctx.get("job_try", 1))
    request = IndexRequest(
        job_id=job_id, document_id=document_id, object_key=object_key, filename=filename, owner=owner
    )
    raw = {"job_id": job_id, "document_id": document_id, "object_key": object_key, "filename": filename, "owner": owner}
    if await jobs.is_cancelled(job_id):
        await jobs.finish(job_id, "cancelled")
        metrics.JOBS.labels("cancelled").inc()
        return {"state": "cancelled"}
    await jobs.start(job_id, attempt=attempt)
    started = time.perf_counter()
    try:
        result = await indexer.run(request)
    except JobCancelled:
        # Drop what was indexed so far; the upload stays so the document can be indexed again.
        await indexer.vectors.delete_document(document_id)
        await indexer.storage.delete_prefix(document_prefixes(document_id)[1])
        await jobs.finish(job_id, "cancelled")
        metrics.JOBS.labels("cancelled").inc()
        return {"state": "cancelled"}
    except PERMANENT as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %s failed permanently: %s", job_id, error)
        await jobs.dead_letter(job_id, request=raw, error=error, attempts=attempt)
        await jobs.finish(job_id, "failed", error=error)
        metrics.JOBS.labels("failed").inc()
        return {"state": "failed", "error": error}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempt >= settings.worker_max_tries:
            log.error("job %s failed after %s attempts: %s", job_id, attempt, error)
            await jobs.dead_letter(job_id, request=raw, error=error, attempts=attempt)
            await jobs.finish(job_id, "failed", error=f"gave up after {attempt} attempts: {error}")
            metrics.JOBS.labels("dead_letter").inc()
            return {"state": "failed", "error": error}
        delay = settings.retry_delay(attempt)
        log.warning("job %s attempt %s failed (%s); retrying in %.1fs", job_id, attempt, error, delay)
        await jobs.retrying(job_id, attempt=attempt, error=error)
        metrics.RETRIES.inc()
        raise Retry(defer=delay) from exc
    finally:
        metrics.JOB_SECONDS.observe(time.perf_counter() - started)
    await jobs.finish(job_id, "succeeded")
    metrics.JOBS.labels("succeeded").inc()
    return {
        "state": "succeeded",
        "pages": result.pages_total,
        "indexed": result.pages_indexed,
        "skipped": result.pages_skipped,
    }


async def reindex_collection(ctx: dict[str, Any], *, job_id: str, drop_old: bool = False) -> dict[str, Any]:
    """Admin job: re-embed every page into a new collection version and switch the alias."""
    jobs: JobStore = ctx["jobs"]
    indexer: Indexer = ctx["indexer"]
    if await jobs.get(job_id) is None:  # the admin route may enqueue without a job record
        await jobs.create(job_id, document_id="*", filename="", owner="admin")
    await jobs.start(job_id, attempt=int(ctx.get("job_try", 1)))
    reindexer = Reindexer(
        storage=indexer.storage,
        vectors=indexer.vectors,
        embedder=indexer.embedder,
        batch=indexer.options.embed_batch,
        jobs=jobs,
        job_id=job_id,
    )
    try:
        result = await reindexer.run(drop_old=drop_old)
    except Exception as exc:
        await jobs.finish(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    await jobs.finish(job_id, "succeeded")
    return {
        "state": "succeeded",
        "target": result.target,
        "copied": result.copied,
        "missing_images": len(result.missing_images),
    }


def worker_options(settings: WorkerSettings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` (tests pass overrides such as burst=True or a prepared ctx)."""
    options: dict[str, Any] = {
        "functions": [index_document, reindex_collection],
        "queue_name": settings.worker_queue_name,
        "redis_settings": redis_settings(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": settings.worker_job_timeout_s,
        # arq's own limit sits one above ours: our handler records the dead letter on the last attempt.
        "max_tries": settings.worker_max_tries + 1,
        "keep_result": 3600,
        "health_check_interval": 30,
        "ctx": {"settings": settings},
    }
    options.update(overrides)
    return options


assert index_document.__name__ == INDEX_FUNCTION
assert reindex_collection.__name__ == REINDEX_FUNCTION
