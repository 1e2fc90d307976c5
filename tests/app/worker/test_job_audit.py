"""Each indexing job writes one audit event with its outcome, against real parts: SeaweedFS (pages + audit
buckets), redis-server, Qdrant local mode, the tiny embedder over HTTP. An audit bucket outage at job end never
loses the indexed document: the event is retried, then counted and logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.core.logging import request_id_var
from app.core.metrics import AUDIT_EVENTS, AUDIT_WRITE_FAILURES
from app.services.embedder_client import EmbedderClient
from app.services.jobs import JobStore
from app.services.vectors import VectorIndex
from app.worker.job_audit import INDEX_ACTION, JobAudit
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, index_document, reindex_collection, startup
from tests.app.indexing_support import make_pdf

ACTOR = "system:serviceaccount:visionrag:worker"


def _settings(seaweed_s3, s3_buckets, redis_url: str, embedder_url: str, **extra: Any) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url,
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=seaweed_s3.access_key,
        s3_secret_key=seaweed_s3.secret_key,
        s3_bucket_pages=s3_buckets.pages,
        s3_bucket_audit=s3_buckets.audit,
        s3_sse="s3",
        audit_actor=ACTOR,
        embedder_url=embedder_url,
        worker_embed_batch=2,
        worker_render_dpi=72,
        worker_max_tries=2,
        worker_retry_base_s=0.1,
        worker_embedder_cold_start_s=0,
        worker_call_attempts=1,
        worker_metrics_port=0,
        worker_audit_outage_s=3,
        **extra,
    )


@pytest_asyncio.fixture(loop_scope="function")
async def env(seaweed_s3, s3_buckets, clean_redis, embedder_url, monkeypatch):
    monkeypatch.setenv("HOSTNAME", "worker-7f9c")
    redis = Redis.from_url(clean_redis)
    qdrant = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(qdrant, collection="pages")
    await vectors.ensure_collection()
    settings = _settings(seaweed_s3, s3_buckets, clean_redis, embedder_url)
    indexer = build_indexer(settings, vectors=vectors, jobs=None)
    ctx: dict[str, Any] = {"settings": settings, "indexer": indexer, "redis": redis, "job_try": 1}
    await startup(ctx)  # the worker's own start: job book, job audit
    yield ctx
    await ctx["indexer"].embedder.aclose()
    await qdrant.close()
    await redis.aclose()


def _events(seaweed_s3, bucket: str) -> list[dict[str, Any]]:
    keys = sorted(seaweed_s3.object_names(bucket, "audit/"))
    return [json.loads(seaweed_s3.read(bucket, key)) for key in keys]


async def _upload(ctx: dict[str, Any], doc: str, pages: int, data: bytes | None = None) -> dict[str, str]:
    key = f"uploads/{doc}/report.pdf"
    await ctx["indexer"].storage.put_bytes(key, data if data is not None else make_pdf(pages), "application/pdf")
    jobs: JobStore = ctx["jobs"]
    await jobs.create(f"job-{doc}", document_id=doc, filename="report.pdf", owner="alice")
    return {"job_id": f"job-{doc}", "document_id": doc, "object_key": key, "filename": "report.pdf", "owner": "alice"}


async def test_a_job_that_succeeds_writes_one_event_with_its_outcome(env, seaweed_s3, s3_buckets):
    request = await _upload(env, "doc-a1", 3)
    written = AUDIT_EVENTS.labels(action=INDEX_ACTION)._value.get()
    result = await index_document(env, **request, request_id="req-upload-1")
    assert result["state"] == "succeeded"
    events = _events(seaweed_s3, s3_buckets.audit)
    assert len(events) == 1
    event = events[0]
    assert (event["action"], event["outcome"], event["target"]) == (INDEX_ACTION, "succeeded", "doc-a1")
    assert event["actor"] == f"{ACTOR} pod/worker-7f9c"
    # The upload's request id joins this event to the api's `document.upload` event.
    assert event["request_id"] == "req-upload-1" and request_id_var.get() is None
    assert event["details"] == {
        "job_id": "job-doc-a1",
        "owner": "alice",
        "attempts": 1,
        "pages": 3,
        "indexed": 3,
        "skipped": 0,
    }
    assert AUDIT_EVENTS.labels(action=INDEX_ACTION)._value.get() == written + 1


async def test_a_permanent_failure_writes_a_failed_dead_letter_event_with_the_reason(env, seaweed_s3, s3_buckets):
    request = await _upload(env, "doc-a2", 0, data=b"this is not a pdf")
    result = await index_document(env, **request)
    assert result["state"] == "failed"
    [event] = _events(seaweed_s3, s3_buckets.audit)
    assert (event["action"], event["outcome"], event["target"]) == (INDEX_ACTION, "failed", "doc-a2")
    details = event["details"]
    assert details["dead_letter"] is True and details["cause"] == "permanent" and details["owner"] == "alice"
    assert details["error"] == result["error"] and "not a readable PDF" in details["error"]


async def test_retries_write_nothing_and_the_last_attempt_writes_the_dead_letter_event(
    env, seaweed_s3, s3_buckets, closed_port
):
    from arq import Retry

    request = await _upload(env, "doc-a3", 1)
    await env["indexer"].embedder.aclose()
    env["indexer"].embedder = EmbedderClient(f"http://127.0.0.1:{closed_port}", timeout_s=1)
    with pytest.raises(Retry):
        await index_document({**env, "job_try": 1}, **request)
    assert _events(seaweed_s3, s3_buckets.audit) == []  # a retried attempt is not an outcome
    await index_document({**env, "job_try": 2}, **request)
    [event] = _events(seaweed_s3, s3_buckets.audit)
    assert event["outcome"] == "failed" and event["details"]["cause"] == "retries_exhausted"
    assert event["details"]["attempts"] == 2 and "EmbedderUnavailable" in event["details"]["error"]
    assert (await env["jobs"].dead_letters())[0]["job_id"] == request["job_id"]


async def test_an_audit_outage_at_job_end_keeps_the_document_and_is_counted(
    env, seaweed_s3, s3_buckets, closed_port, caplog
):
    request = await _upload(env, "doc-a4", 2)
    # The audit bucket's endpoint stops answering (connection refused); pages and Redis stay up.
    down = env["settings"].model_copy(update={"s3_endpoint": f"127.0.0.1:{closed_port}"})
    env["audit"] = JobAudit.from_settings(down)
    lost = AUDIT_WRITE_FAILURES.labels(action=INDEX_ACTION)._value.get()
    with caplog.at_level(logging.WARNING, logger="app.worker"):
        result = await index_document(env, **request)
    assert result == {"state": "succeeded", "pages": 2, "indexed": 2, "skipped": 0}
    status = await env["jobs"].get(request["job_id"])
    assert status is not None and status.state == "succeeded"
    assert await env["indexer"].vectors.count(document_id="doc-a4") == 2
    assert AUDIT_WRITE_FAILURES.labels(action=INDEX_ACTION)._value.get() == lost + 1
    assert _events(seaweed_s3, s3_buckets.audit) == []
    # It was retried with backoff, then the whole event went to the error log.
    assert any("audit bucket unavailable" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR and "audit event not written" in r.getMessage()]
    message = error.getMessage()
    logged = json.loads(message[message.index('{"actor"') :])
    assert logged["outcome"] == "succeeded" and logged["target"] == "doc-a4" and logged["details"]["pages"] == 2


async def test_a_reindex_job_writes_its_outcome(env, seaweed_s3, s3_buckets):
    request = await _upload(env, "doc-a5", 1)
    await index_document(env, **request)
    result = await reindex_collection(env, job_id="reindex-a5")
    events = [e for e in _events(seaweed_s3, s3_buckets.audit) if e["action"] == "collection.reindex"]
    assert [(e["outcome"], e["target"]) for e in events] == [("succeeded", "reindex-a5")]
    assert events[0]["details"] == {"result_target": result["target"], "copied": 1}
