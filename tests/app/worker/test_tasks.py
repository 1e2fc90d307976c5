"""The indexing job against real parts: redis-server, SeaweedFS, Qdrant local mode, the embedder over HTTP."""

from __future__ import annotations

import json
import logging

import pytest
import pytest_asyncio
from arq import Retry
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.core.logging import configure_logging, request_id_var
from app.services.embedder_client import EmbedderClient
from app.services.jobs import JobStore, enqueue_index
from app.services.vectors import VectorIndex, point_id
from app.worker import metrics
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, index_document, worker_options
from tests.app.indexing_support import make_pdf


def _settings(seaweed_s3, bucket, redis_url, embedder_url, **extra) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url,
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=seaweed_s3.access_key,
        s3_secret_key=seaweed_s3.secret_key,
        s3_bucket_pages=bucket,
        s3_sse="s3",
        embedder_url=embedder_url,
        worker_embed_batch=2,
        worker_render_dpi=72,
        worker_max_tries=3,
        worker_retry_base_s=0.1,
        # No cold-start sizing here: these tests count attempts against WORKER_MAX_TRIES itself.
        worker_embedder_cold_start_s=0,
        worker_call_attempts=1,
        worker_metrics_port=0,
        **extra,
    )


@pytest_asyncio.fixture(loop_scope="function")
async def env(seaweed_s3, s3_buckets, clean_redis, embedder_url):
    redis = Redis.from_url(clean_redis)
    qdrant = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(qdrant, collection="pages")
    await vectors.ensure_collection()
    settings = _settings(seaweed_s3, s3_buckets.pages, clean_redis, embedder_url)
    jobs = JobStore(redis)
    indexer = build_indexer(settings, vectors=vectors, jobs=jobs)
    ctx = {"settings": settings, "jobs": jobs, "indexer": indexer, "redis": redis, "job_try": 1}
    yield ctx
    await indexer.embedder.aclose()
    await qdrant.close()
    await redis.aclose()


async def _upload(ctx, doc: str, pages: int, data: bytes | None = None) -> dict[str, str]:
    key = f"uploads/{doc}/report.pdf"
    await ctx["indexer"].storage.put_bytes(key, data if data is not None else make_pdf(pages), "application/pdf")
    request = {
        "job_id": f"job-{doc}",
        "document_id": doc,
        "object_key": key,
        "filename": "report.pdf",
        "owner": "alice",
    }
    await ctx["jobs"].create(request["job_id"], document_id=doc, filename="report.pdf", owner="alice")
    return request


async def test_arq_worker_indexes_an_uploaded_pdf(env, seaweed_s3, s3_buckets, clean_redis):
    pool = await create_pool(RedisSettings.from_dsn(clean_redis))
    request = await _upload(env, "doc-1", 5)
    await env["jobs"].redis.delete(f"visionrag:job:{request['job_id']}")
    await enqueue_index(pool, env["jobs"], **request)
    worker = Worker(
        **worker_options(
            env["settings"],
            burst=True,
            handle_signals=False,
            poll_delay=0.05,
            ctx={"settings": env["settings"], "indexer": env["indexer"]},
        )
    )
    await worker.main()
    await worker.close()
    await pool.aclose()
    status = await env["jobs"].get(request["job_id"])
    assert status is not None and (status.state, status.pages_done, status.pages_total) == ("succeeded", 5, 5)
    vectors: VectorIndex = env["indexer"].vectors
    pages = await vectors.document_pages("doc-1")
    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]
    assert pages[0]["object_key"] == "pages/doc-1/00001.jpg" and pages[0]["owner"] == "alice"
    assert seaweed_s3.object_names(s3_buckets.pages, "pages/doc-1/") == [
        f"pages/doc-1/{n:05d}.jpg" for n in range(1, 6)
    ]
    stat = seaweed_s3.client().stat_object(s3_buckets.pages, "pages/doc-1/00003.jpg")
    assert stat.metadata.get("X-Amz-Server-Side-Encryption") == "AES256"


async def test_worker_log_lines_carry_the_request_id_the_api_sent(env, clean_redis, capsys):
    """One upload can be followed from the API's request log to the worker's job log by its request id."""
    configure_logging("INFO", json=True)
    try:
        pool = await create_pool(RedisSettings.from_dsn(clean_redis))
        request = await _upload(env, "doc-rid", 1)
        await env["jobs"].redis.delete(f"visionrag:job:{request['job_id']}")
        token = request_id_var.set("req-7f3a9c")  # what the API's middleware binds while it handles the upload
        try:
            await enqueue_index(pool, env["jobs"], **request)
        finally:
            request_id_var.reset(token)
        worker = Worker(
            **worker_options(
                env["settings"],
                burst=True,
                handle_signals=False,
                poll_delay=0.05,
                ctx={"settings": env["settings"], "indexer": env["indexer"]},
            )
        )
        await worker.main()
        await worker.close()
        await pool.aclose()
        logging.getLogger("test").info("after the job")
    finally:
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if h.get_name() != "visionrag-json"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    job_lines = [line for line in lines if line.get("job_id") == request["job_id"]]
    events = [line["event"] for line in job_lines]
    assert any(e.startswith("index job started") for e in events), lines
    assert "index job ended: succeeded" in events
    assert {line.get("request_id") for line in job_lines} == {"req-7f3a9c"}
    assert all(line["document_id"] == "doc-rid" for line in job_lines)
    # The binding ends with the job: later lines of the process do not inherit it.
    (after,) = [line for line in lines if line["event"] == "after the job"]
    assert "request_id" not in after and "job_id" not in after


async def test_rerun_is_idempotent_and_skips_done_pages(env):
    request = await _upload(env, "doc-2", 3)
    pages_before = metrics.PAGES._value.get()
    first = await index_document(env, **request)
    assert metrics.PAGES._value.get() == pages_before + 3
    assert first == {"state": "succeeded", "pages": 3, "indexed": 3, "skipped": 0}
    second = await index_document(env, **request)
    assert second == {"state": "succeeded", "pages": 3, "indexed": 0, "skipped": 3}
    assert await env["indexer"].vectors.count() == 3


async def test_transient_failure_retries_with_backoff_then_dead_letters(env, closed_port):
    request = await _upload(env, "doc-3", 2)
    working = env["indexer"].embedder
    env["indexer"].embedder = EmbedderClient(f"http://127.0.0.1:{closed_port}", timeout_s=1)
    with pytest.raises(Retry) as retry:
        await index_document({**env, "job_try": 1}, **request)
    assert retry.value.defer_score == 100  # 0.1 s * 2^0, in ms
    status = await env["jobs"].get(request["job_id"])
    assert status is not None and (status.state, status.stage) == ("queued", "retrying")
    assert "EmbedderUnavailable" in status.error
    last = await index_document({**env, "job_try": 3}, **request)
    assert last["state"] == "failed"
    letters = await env["jobs"].dead_letters()
    assert letters[0]["job_id"] == request["job_id"] and letters[0]["attempts"] == 3
    assert letters[0]["request"]["object_key"] == request["object_key"]
    # The embedder is back: a replay completes the document.
    await env["indexer"].embedder.aclose()
    env["indexer"].embedder = working
    assert (await index_document(env, **request))["state"] == "succeeded"
    assert await env["indexer"].vectors.count(document_id="doc-3") == 2


async def test_bad_pdf_fails_permanently_without_retry(env):
    request = await _upload(env, "doc-4", 0, data=b"this is not a pdf")
    result = await index_document(env, **request)
    assert result["state"] == "failed" and "not a readable PDF" in result["error"]
    status = await env["jobs"].get(request["job_id"])
    assert status is not None and status.state == "failed"
    assert (await env["jobs"].dead_letters())[0]["job_id"] == request["job_id"]


async def test_cancel_mid_job_removes_partial_pages(env, seaweed_s3, s3_buckets):
    request = await _upload(env, "doc-5", 6)
    indexer = env["indexer"]
    real = indexer.embedder.embed_images
    calls = 0

    async def embed_then_cancel(images):
        nonlocal calls
        calls += 1
        if calls == 2:
            await env["jobs"].request_cancel(request["job_id"])
        return await real(images)

    indexer.embedder.embed_images = embed_then_cancel
    await env["jobs"].start(request["job_id"], attempt=1)
    result = await index_document(env, **request)
    assert result == {"state": "cancelled"}
    assert calls < 3
    assert await indexer.vectors.count(document_id="doc-5") == 0
    assert seaweed_s3.object_names(s3_buckets.pages, "pages/doc-5/") == []
    assert seaweed_s3.object_names(s3_buckets.pages, "uploads/doc-5/") == ["uploads/doc-5/report.pdf"]
    status = await env["jobs"].get(request["job_id"])
    assert status is not None and status.state == "cancelled"


async def test_point_ids_are_deterministic(env):
    request = await _upload(env, "doc-6", 1)
    await index_document(env, **request)
    pages = await env["indexer"].vectors.client.retrieve("pages", ids=[point_id("doc-6", 1)])
    assert len(pages) == 1 and pages[0].payload["page"] == 1


def test_settings_refuse_unsafe_values_outside_dev():
    with pytest.raises(ValueError, match="S3_SSE='none'") as err:
        WorkerSettings(environment="prod", s3_sse="none", qdrant_url="https://q:6333")
    assert "QDRANT_API_KEY is unset" in str(err.value)
    with pytest.raises(ValueError, match="QDRANT_URL=':memory:'"):
        WorkerSettings(environment="staging", s3_sse="s3")
    assert WorkerSettings(worker_retry_base_s=2, worker_retry_max_s=10).retry_delay(5) == 10


async def test_reindex_job_enqueued_without_a_record_runs(env):
    from app.worker.tasks import reindex_collection

    request = await _upload(env, "doc-7", 2)
    await index_document(env, **request)
    before = await env["indexer"].vectors.resolve()
    result = await reindex_collection(env, job_id="reindex-1")
    assert result["state"] == "succeeded" and result["copied"] == 2
    assert await env["indexer"].vectors.resolve() not in (None, before)
    status = await env["jobs"].get("reindex-1")
    assert status is not None and status.state == "succeeded"
