"""An upload's indexing job links to the upload's trace: api `POST /index` -> arq (real Redis) -> worker job span.

Real OTLP/HTTP receiver, Redis, SeaweedFS and the real embedder app on the tiny ColPali model (the fixtures of
tests/app/worker/test_worker_tracing.py). The job span is its own root with a span link to the api's server span
(OpenTelemetry messaging conventions, docs/workloads.md "Tracing and error tracking"); the carrier holds
traceparent/tracestate only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix
from arq.jobs import Job
from arq.worker import Worker
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.core.telemetry import setup_tracing
from app.services.jobs import QUEUE_NAME, JobStore
from app.services.vectors import VectorIndex
from app.worker.job_tracing import trace_jobs
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, worker_options
from tests.app.api.conftest import make_pdf
from tests.app.indexing_support import tiny_colpali  # noqa: F401  (fixture)
from tests.app.otlp_receiver import OtlpReceiver
from tests.app.worker.test_worker_tracing import Embedder, receiver, traced_embedder  # noqa: F401  (fixtures)

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _worker_settings(api: Any, otlp: OtlpReceiver, embedder: Embedder, ratio: float) -> WorkerSettings:
    return WorkerSettings(
        redis_url=api.redis_url,
        s3_endpoint=api.s3_endpoint,
        s3_access_key=api.s3_access_key,
        s3_secret_key=api.s3_secret_key,
        s3_bucket_pages=api.s3_bucket_pages,
        embedder_url=embedder.url,
        worker_embed_batch=2,
        worker_render_dpi=72,
        worker_call_attempts=1,
        worker_metrics_port=0,
        otel_exporter_otlp_endpoint=otlp.url,
        otel_traces_sampler_arg=ratio,
    )


async def _upload(api_factory: Any, settings: Any, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """One traced upload; returns its job id and the job's arguments as arq stored them in Redis."""
    async with api_factory(settings) as api:
        try:
            files = {"files": ("report.pdf", make_pdf(1), "application/pdf")}
            response = await api.client.post("/index", files=files, headers=headers)
            assert response.status_code == 202, response.text
            assert api.app.state.tracing.force_flush()
        finally:
            api.app.state.tracing.shutdown()
    job_id = response.json()["job_id"]
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        info = await Job(job_id, pool, _queue_name=QUEUE_NAME).info()
    finally:
        await pool.aclose()
    assert info is not None
    return job_id, dict(info.kwargs)


async def _run_worker(settings: WorkerSettings, job_id: str) -> None:
    tracing = setup_tracing(settings, extra=(trace_jobs,))
    assert tracing is not None
    redis = Redis.from_url(settings.redis_url)
    qdrant = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(qdrant, collection="pages")
    jobs = JobStore(redis)
    indexer = build_indexer(settings, vectors=vectors, jobs=jobs)
    try:
        await vectors.ensure_collection()
        options = worker_options(
            settings, burst=True, handle_signals=False, poll_delay=0.05, ctx={"settings": settings, "indexer": indexer}
        )
        worker = Worker(**options)
        await worker.main()
        await worker.close()
        status = await jobs.get(job_id)
        assert status is not None and status.state == "succeeded", status
        assert tracing.force_flush()
    finally:
        tracing.shutdown()
        await indexer.embedder.aclose()
        await qdrant.close()
        await redis.aclose()


async def test_an_uploads_job_span_links_to_the_upload_request(
    receiver: OtlpReceiver,  # noqa: F811
    traced_embedder: Embedder,  # noqa: F811
    settings_factory: Callable[..., Any],
    api_factory: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_factory(
        otel_exporter_otlp_endpoint=receiver.url, embedder_url=traced_embedder.url, otel_traces_sampler_arg=1.0
    )
    # A client that sends its own trace context and baggage: the trace continues, the baggage goes nowhere.
    headers = {
        **auth(),
        "traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01",
        "tracestate": "vendor=opaque",
        "baggage": "user.email=alice%40example.com",
    }
    job_id, job_args = await _upload(api_factory, settings, headers)
    carrier = job_args["trace_context"]
    assert set(carrier) == {"traceparent", "tracestate"} and carrier["tracestate"] == "vendor=opaque"
    assert "alice" not in repr(job_args)

    # The link comes from the payload arq itself reads (job_tracing.py): the worker never GETs the job key again.
    plain_get = ArqRedis.get
    job_reads: list[str] = []

    def counting_get(self: ArqRedis, name: Any) -> Any:
        key = name.decode() if isinstance(name, bytes) else str(name)
        if key.startswith(job_key_prefix):
            job_reads.append(key)
        return plain_get(self, name)

    monkeypatch.setattr(ArqRedis, "get", counting_get)
    await _run_worker(_worker_settings(settings, receiver, traced_embedder, 1.0), job_id)
    assert job_reads == []
    assert traced_embedder.tracing.force_flush()
    spans = receiver.spans
    server = next(s for s in spans if s.service == "visionrag-api" and s.attributes.get("http.route") == "/index")
    assert server.trace_id == CLIENT_TRACE
    consumers = [s for s in spans if s.service == "visionrag-worker" and s.kind == "consumer"]
    assert len(consumers) == 1
    job = consumers[0]
    assert job.attributes["messaging.message.id"] == job_id
    # Its own root (the job is sampled by the worker's ratio), linked to the request that enqueued it.
    assert job.parent_id == "" and job.trace_id != server.trace_id
    assert job.links == ((server.trace_id, server.span_id, {"messaging.message.id": job_id}),)
    # The job's own calls stay in the job's trace.
    embeds = [s for s in spans if s.kind == "client" and s.attributes.get("http.url", "").endswith("/embed/images")]
    assert embeds and {s.trace_id for s in embeds} == {job.trace_id}


async def test_sampled_out_uploads_and_jobs_export_nothing(
    receiver: OtlpReceiver,  # noqa: F811
    traced_embedder: Embedder,  # noqa: F811
    settings_factory: Callable[..., Any],
    api_factory: Any,
    auth: Any,
) -> None:
    settings = settings_factory(
        otel_exporter_otlp_endpoint=receiver.url, embedder_url=traced_embedder.url, otel_traces_sampler_arg=0
    )
    job_id, job_args = await _upload(api_factory, settings, auth())
    # The unsampled context still travels (sampled flag off): the worker decides on its own ratio.
    assert int(job_args["trace_context"]["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0
    await _run_worker(_worker_settings(settings, receiver, traced_embedder, 0.0), job_id)
    assert traced_embedder.tracing.force_flush()
    assert receiver.spans == []
