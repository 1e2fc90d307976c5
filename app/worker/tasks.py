"""arq job functions and the worker's startup/shutdown (clients built from WorkerSettings)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pypdfium2 as pdfium
import structlog
from arq import Retry

from app.core.logging import request_id_var
from app.core.resilience import Resilience
from app.services.embedder_client import EmbedderClient, EmbedderRejected
from app.services.factory import page_storage, redis_client, vector_index
from app.services.jobs import INDEX_FUNCTION, REINDEX_FUNCTION, JobStore
from app.services.reindexer import Reindexer
from app.services.storage import document_prefixes
from app.services.vectors import VectorIndex
from app.worker import metrics
from app.worker.bookkeeping import JobBook, RedisUnavailable
from app.worker.errors import JobCancelled
from app.worker.job_audit import INDEX_ACTION, REINDEX_ACTION, job_audit
from app.worker.pipeline import Indexer, IndexRequest, PipelineOptions
from app.worker.render import PdfRejected
from app.worker.runner import ResilientWorker
from app.worker.settings import WorkerSettings, get_worker_settings

log = logging.getLogger(__name__)
PERMANENT = (PdfRejected, EmbedderRejected, pdfium.PdfiumError, ValueError)


def worker_resilience(settings: WorkerSettings) -> Resilience:
    """The worker's breakers (the embedder's), reported by its health check."""
    return Resilience(
        failure_threshold=settings.worker_breaker_failure_threshold,
        reset_timeout_s=settings.worker_breaker_reset_timeout_s,
        retry_attempts=settings.worker_call_attempts,
    )


def build_indexer(
    settings: WorkerSettings,
    *,
    vectors: VectorIndex | None = None,
    jobs: JobStore | JobBook | None,
    resilience: Resilience | None = None,
) -> Indexer:
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
    return Indexer(
        storage=storage,
        vectors=vectors,
        embedder=embedder,
        jobs=jobs,
        options=options,
        resilience=resilience,
        embed_timeout_s=settings.embedder_timeout_s * settings.worker_call_attempts,
    )


async def startup(ctx: dict[str, Any]) -> None:
    settings: WorkerSettings = ctx.setdefault("settings", get_worker_settings())
    ctx["jobs"] = JobStore(ctx["redis"], ttl_s=settings.worker_job_ttl_s)
    ctx["book"] = JobBook(ctx["jobs"], outage_s=settings.worker_redis_outage_s)
    resilience = ctx.setdefault("resilience", worker_resilience(settings))
    job_audit(ctx)  # each job's outcome is audited (app/worker/job_audit.py)
    if "indexer" not in ctx:
        ctx["indexer"] = build_indexer(settings, jobs=ctx["book"], resilience=resilience)
    else:
        if ctx["indexer"].jobs is None:
            ctx["indexer"].jobs = ctx["book"]
        if ctx["indexer"].resilience is None:
            ctx["indexer"].resilience = resilience
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
    trace_context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """arq job. `request_id` is the API request that enqueued it (None from older APIs and from the CLI).

    `trace_context` (W3C traceparent/tracestate of that request) is read by app/worker/job_tracing.py, not here.
    """
    # arq runs every job in its own asyncio task, so what is bound here is seen by this job's log lines only.
    context: dict[str, Any] = {"job_id": job_id, "document_id": document_id}
    if request_id:
        context["request_id"] = request_id
    with structlog.contextvars.bound_contextvars(**context):
        token = request_id_var.set(request_id)
        try:
            log.info("index job started (attempt %s)", ctx.get("job_try", 1))
            try:
                result = await _index_document(
                    ctx, job_id=job_id, document_id=document_id, object_key=object_key, filename=filename, owner=owner
                )
            except RedisUnavailable as exc:
                # Redis stayed down past WORKER_REDIS_OUTAGE_S: nothing can be recorded now, so arq queues the job
                # again (never a plain error: arq would drop the job while its record still says "running").
                settings: WorkerSettings = ctx["settings"]
                log.error("index job could not record its state: %s", exc)
                raise Retry(defer=settings.retry_delay(int(ctx.get("job_try", 1)))) from exc
            log.info("index job ended: %s", result["state"])
            return result
        finally:
            request_id_var.reset(token)


async def _index_document(
    ctx: dict[str, Any], *, job_id: str, document_id: str, object_key: str, filename: str, owner: str
) -> dict[str, Any]:
    settings: WorkerSettings = ctx["settings"]
    # Every write of this job's record goes through the book: it survives a Redis outage (bookkeeping.py).
    jobs: JobBook = ctx.get("book") or JobBook(ctx["jobs"], outage_s=settings.worker_redis_outage_s)
    indexer: Indexer = ctx["indexer"]
    attempt = int(ctx.get("job_try", 1))
    request = IndexRequest(
        job_id=job_id, document_id=document_id, object_key=object_key, filename=filename, owner=owner
    )
    raw = {"job_id": job_id, "document_id": document_id, "object_key": object_key, "filename": filename, "owner": owner}

    async def audit(outcome: str, **details: Any) -> None:
        # One event per outcome, before the record turns terminal: "done" includes the audit (job_audit.py).
        await job_audit(ctx).record(
            action=INDEX_ACTION,
            target=document_id,
            outcome=outcome,
            job_id=job_id,
            owner=owner,
            attempts=attempt,
            **details,
        )

    if await jobs.cancelled_at_start(job_id):
        await audit("cancelled")
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
        await audit("cancelled")
        await jobs.finish(job_id, "cancelled")
        metrics.JOBS.labels("cancelled").inc()
        return {"state": "cancelled"}
    except PERMANENT as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %s failed permanently: %s", job_id, error)
        await jobs.dead_letter(job_id, request=raw, error=error, attempts=attempt)
        await audit("failed", error=error, dead_letter=True, cause="permanent")
        await jobs.finish(job_id, "failed", error=error)
        metrics.JOBS.labels("failed").inc()
        return {"state": "failed", "error": error}
    except RedisUnavailable:
        raise  # index_document hands it back to arq as a retry
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempt >= settings.max_tries:
            log.error("job %s failed after %s attempts: %s", job_id, attempt, error)
            await jobs.dead_letter(job_id, request=raw, error=error, attempts=attempt)
            await audit("failed", error=error, dead_letter=True, cause="retries_exhausted")
            await jobs.finish(job_id, "failed", error=f"gave up after {attempt} attempts: {error}")
            metrics.JOBS.labels("dead_letter").inc()
            return {"state": "failed", "error": error}
        delay = settings.retry_delay(attempt)
        log.warning("job %s attempt %s failed (%s); retrying in %.1fs", job_id, attempt, error, delay)
        try:
            await jobs.retrying(job_id, attempt=attempt, error=error)
        except RedisUnavailable as down:
            log.error("job %s: retry not recorded: %s", job_id, down)
        metrics.RETRIES.inc()
        raise Retry(defer=delay) from exc
    finally:
        metrics.JOB_SECONDS.observe(time.perf_counter() - started)
    await audit("succeeded", pages=result.pages_total, indexed=result.pages_indexed, skipped=result.pages_skipped)
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
        error = f"{type(exc).__name__}: {exc}"
        await job_audit(ctx).record(action=REINDEX_ACTION, target=job_id, outcome="failed", error=error)
        await jobs.finish(job_id, "failed", error=error)
        raise
    await job_audit(ctx).record(
        action=REINDEX_ACTION, target=job_id, outcome="succeeded", result_target=result.target, copied=result.copied
    )
    await jobs.finish(job_id, "succeeded")
    return {
        "state": "succeeded",
        "target": result.target,
        "copied": result.copied,
        "missing_images": len(result.missing_images),
    }


def worker_options(settings: WorkerSettings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` (tests pass overrides such as burst=True or a prepared ctx)."""
    ctx = {"settings": settings, **overrides.pop("ctx", {})}
    ctx.setdefault("resilience", worker_resilience(settings))
    options: dict[str, Any] = {
        "functions": [index_document, reindex_collection],
        "queue_name": settings.worker_queue_name,
        # Our client config (retry with backoff, timeouts, health-check PING), not arq's create_pool defaults.
        "redis_pool": redis_client(
            settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            retries=settings.worker_redis_retries,
            queue_name=settings.worker_queue_name,
        ),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": settings.worker_job_timeout_s,
        # arq's own limit sits one above ours: our handler records the dead letter on the last attempt.
        "max_tries": settings.max_tries + 1,
        "keep_result": 3600,
        "health_check_interval": 30,
        "ctx": ctx,
    }
    options.update(overrides)
    return options


def make_worker(settings: WorkerSettings, **overrides: Any) -> ResilientWorker:
    """The worker that rides out Redis restarts (app/worker/runner.py), with `worker_options` plus its lease."""
    options = worker_options(settings, **overrides)
    resilience: Resilience = options["ctx"]["resilience"]
    return ResilientWorker(
        **options,
        lease_s=settings.worker_lease_s,
        redis_outage_s=settings.worker_redis_outage_s,
        breakers=resilience.not_closed,
    )


assert index_document.__name__ == INDEX_FUNCTION
assert reindex_collection.__name__ == REINDEX_FUNCTION
