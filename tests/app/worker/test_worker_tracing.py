"""Tracing of the indexing job against a real OTLP/HTTP receiver, real Redis, SeaweedFS and the real embedder.

One arq job is one trace: a CONSUMER span from the worker (app/worker/job_tracing.py), with the job's Redis,
S3 (minio) and embedder calls as its children, and the embedder's server spans continuing it (W3C traceparent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.core.telemetry import Tracing, setup_tracing
from app.embedder.app import create_app as create_embedder
from app.embedder.settings import EmbedderSettings
from app.services.jobs import JobStore, enqueue_index
from app.services.vectors import VectorIndex
from app.worker.job_tracing import trace_jobs
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, worker_options
from tests.app.indexing_support import make_pdf, serve_in_thread
from tests.app.otlp_receiver import OtlpReceiver, otlp_receiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@dataclass
class Embedder:
    url: str
    tracing: Tracing


@pytest.fixture
def traced_embedder(tiny_colpali: Path, receiver: OtlpReceiver) -> Iterator[Embedder]:
    settings = EmbedderSettings(
        model=str(tiny_colpali), max_batch_size=8, max_wait_ms=2, otel_exporter_otlp_endpoint=receiver.url
    )
    app = create_embedder(settings)
    tracing = setup_tracing(settings, app=app, clients=())
    assert tracing is not None
    try:
        with serve_in_thread(app) as url:
            yield Embedder(url, tracing)
    finally:
        tracing.shutdown()


def _settings(seaweed_s3, bucket: str, redis_url: str, embedder_url: str, endpoint: str, ratio: float):
    return WorkerSettings(
        redis_url=redis_url,
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=seaweed_s3.access_key,
        s3_secret_key=seaweed_s3.secret_key,
        s3_bucket_pages=bucket,
        embedder_url=embedder_url,
        worker_embed_batch=2,
        worker_render_dpi=72,
        worker_call_attempts=1,
        worker_metrics_port=0,
        otel_exporter_otlp_endpoint=endpoint,
        otel_traces_sampler_arg=ratio,
    )


async def _run_one_job(settings: WorkerSettings, doc: str, trace_context: dict[str, str] | None = None) -> str:
    tracing = setup_tracing(settings, extra=(trace_jobs,))
    assert tracing is not None
    redis = Redis.from_url(settings.redis_url)
    qdrant = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(qdrant, collection="pages")
    await vectors.ensure_collection()
    jobs = JobStore(redis)
    indexer = build_indexer(settings, vectors=vectors, jobs=jobs)
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        key = f"uploads/{doc}/report.pdf"
        await indexer.storage.put_bytes(key, make_pdf(2), "application/pdf")
        request = {"job_id": f"job-{doc}", "document_id": doc, "object_key": key, "filename": "r.pdf", "owner": "a"}
        await jobs.create(request["job_id"], document_id=doc, filename="r.pdf", owner="a")
        await enqueue_index(pool, jobs, **request, trace_context=trace_context)
        worker = Worker(
            **worker_options(
                settings,
                burst=True,
                handle_signals=False,
                poll_delay=0.05,
                ctx={"settings": settings, "indexer": indexer},
            )
        )
        await worker.main()
        await worker.close()
        status = await jobs.get(request["job_id"])
        assert status is not None and status.state == "succeeded"
        assert tracing.force_flush()
        return request["job_id"]
    finally:
        tracing.shutdown()
        await pool.aclose()
        await indexer.embedder.aclose()
        await qdrant.close()
        await redis.aclose()


async def test_an_indexing_job_is_one_trace_with_its_calls(
    seaweed_s3, s3_buckets, clean_redis, traced_embedder, receiver
) -> None:
    settings = _settings(seaweed_s3, s3_buckets.pages, clean_redis, traced_embedder.url, receiver.url, 1.0)
    job_id = await _run_one_job(settings, "doc-traced")
    assert traced_embedder.tracing.force_flush()
    worker = receiver.of("visionrag-worker")
    jobs = [s for s in worker if s.kind == "consumer"]
    assert len(jobs) == 1 and jobs[0].attributes["messaging.message.id"] == job_id and jobs[0].parent_id == ""
    assert jobs[0].links == ()  # enqueued outside any trace: its own root, nothing to link to
    trace = [s for s in receiver.spans if s.trace_id == jobs[0].trace_id]
    assert [s for s in trace if s.attributes.get("db.system") == "redis"]
    s3 = {s.attributes["http.method"] for s in trace if s.attributes.get("rpc.service") == "S3"}
    assert {"GET", "PUT"} <= s3  # the uploaded PDF read, the page images written
    calls = [s for s in trace if s.kind == "client" and s.attributes.get("http.url", "").endswith("/embed/images")]
    assert calls
    servers = [s for s in trace if s.service == "visionrag-embedder" and s.kind == "server"]
    assert servers and {s.parent_id for s in servers} <= {c.span_id for c in calls}
    # arq's queue polling outside a job starts no trace of its own.
    assert all(s.trace_id == jobs[0].trace_id for s in worker)


async def test_ratio_zero_traces_no_job(seaweed_s3, s3_buckets, clean_redis, traced_embedder, receiver) -> None:
    settings = _settings(seaweed_s3, s3_buckets.pages, clean_redis, traced_embedder.url, receiver.url, 0.0)
    await _run_one_job(settings, "doc-untraced")
    assert traced_embedder.tracing.force_flush()
    assert receiver.spans == []


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "garbage", "baggage": "user.email=alice@example.com"},
        # A request the api did not sample: nothing was exported to link to.
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"},
    ],
)
async def test_a_malformed_or_unsampled_carrier_still_runs_the_job_as_its_own_root(
    seaweed_s3, s3_buckets, clean_redis, traced_embedder, receiver, carrier
) -> None:
    settings = _settings(seaweed_s3, s3_buckets.pages, clean_redis, traced_embedder.url, receiver.url, 1.0)
    job_id = await _run_one_job(settings, "doc-odd-carrier", trace_context=carrier)
    jobs = [s for s in receiver.of("visionrag-worker") if s.kind == "consumer"]
    assert [(s.attributes["messaging.message.id"], s.parent_id, s.links) for s in jobs] == [(job_id, "", ())]
    assert "0af7651916cd43dd8448eb211c80319c" not in {s.trace_id for s in receiver.spans}
