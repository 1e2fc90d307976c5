"""Tracing end to end against a real OTLP/HTTP receiver: api -> embedder over real HTTP, Redis, SeaweedFS S3.

The api runs create_app() on the real local parts (tests/app/conftest.py); the embedder is its real FastAPI app
(app/embedder/app.py) with a deterministic encoder, served by uvicorn with its own tracer, as in its pod. Every span
of one search must share the trace id the api's server span started (W3C traceparent api -> embedder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.core.telemetry import Tracing, setup_tracing
from app.embedder.app import create_app as create_embedder
from app.embedder.settings import EmbedderSettings
from app.services import multivector_wire as wire
from tests.app.api.conftest import embed_text, make_pdf
from tests.app.indexing_support import serve_in_thread
from tests.app.otlp_receiver import OtlpReceiver, Span, otlp_receiver


@dataclass(frozen=True)
class _Info:
    model: str = "deterministic"
    dim: int = 128


class _Encoder:
    """The embedder's Encoder protocol with the vectors the api tests seed (tests/app/api/conftest.py)."""

    info = _Info()

    def embed_queries(self, texts: Sequence[str]) -> list[wire.Multivector]:
        return [wire.Multivector(embed_text(t)) for t in texts]

    def embed_images(self, images: Sequence[Any]) -> list[wire.Multivector]:
        return [wire.Multivector(embed_text(str(i))) for i, _ in enumerate(images)]


@dataclass
class Traced:
    receiver: OtlpReceiver
    embedder_url: str
    embedder: Tracing


@pytest.fixture
def traced() -> Iterator[Traced]:
    with otlp_receiver() as receiver:
        settings = EmbedderSettings(otel_exporter_otlp_endpoint=receiver.url, environment="dev")
        app = create_embedder(settings, encoder=_Encoder())
        tracing = setup_tracing(settings, app=app, clients=())
        assert tracing is not None
        try:
            with serve_in_thread(app) as url:
                yield Traced(receiver, url, tracing)
        finally:
            tracing.shutdown()


def _flush(api: Any, traced: Traced) -> None:
    assert api.app.state.tracing.force_flush() and traced.embedder.force_flush()


def _one_trace(spans: list[Span], server: Span) -> list[Span]:
    return [s for s in spans if s.trace_id == server.trace_id]


async def test_a_search_is_one_trace_from_the_api_to_the_embedder(
    traced: Traced, settings_factory: Callable[..., Any], api_factory: Any, auth: Any
) -> None:
    settings = settings_factory(
        otel_exporter_otlp_endpoint=traced.receiver.url, embedder_url=traced.embedder_url, otel_traces_sampler_arg=1.0
    )
    async with api_factory(settings) as api:
        try:
            response = await api.client.get("/search", params={"q": "invoice totals"}, headers=auth())
            assert response.status_code == 200, response.text
            _flush(api, traced)
        finally:
            api.app.state.tracing.shutdown()
    spans = traced.receiver.spans
    servers = [s for s in spans if s.service == "visionrag-api" and s.kind == "server"]
    assert len(servers) == 1 and servers[0].attributes["http.route"] == "/search"
    trace = _one_trace(spans, servers[0])
    by_service = {s.service for s in trace}
    assert by_service == {"visionrag-api", "visionrag-embedder"}
    # Outgoing call to the embedder (httpx), and the embedder's server span as its child: W3C propagation.
    calls = [s for s in trace if s.kind == "client" and s.attributes.get("http.url", "").endswith("/embed/queries")]
    assert len(calls) == 1 and calls[0].service == "visionrag-api"
    embedder_servers = [s for s in trace if s.service == "visionrag-embedder" and s.kind == "server"]
    assert [s.parent_id for s in embedder_servers] == [calls[0].span_id]
    assert embedder_servers[0].attributes["http.route"] == "/embed/queries"
    # Redis (the response cache) inside the same trace.
    assert [s for s in trace if s.attributes.get("db.system") == "redis"]
    # Resource attributes the X-Ray console groups by.
    assert servers[0].resource["deployment.environment"] == "dev"
    # X-Ray accepts only ids whose first 32 bits are a recent epoch second.
    import time

    assert abs(int(servers[0].trace_id[:8], 16) - time.time()) < 300
    # The query string never reaches a span (it carries the user's question).
    assert not [s for s in spans if "invoice" in repr(s.attributes)]


async def test_an_upload_traces_its_s3_and_redis_calls(
    traced: Traced, settings_factory: Callable[..., Any], api_factory: Any, auth: Any
) -> None:
    settings = settings_factory(otel_exporter_otlp_endpoint=traced.receiver.url, embedder_url=traced.embedder_url)
    async with api_factory(settings) as api:
        try:
            files = {"files": ("report.pdf", make_pdf(1), "application/pdf")}
            response = await api.client.post("/index", files=files, headers=auth())
            assert response.status_code == 202, response.text
            _flush(api, traced)
        finally:
            api.app.state.tracing.shutdown()
    spans = traced.receiver.of("visionrag-api")
    server = next(s for s in spans if s.kind == "server" and s.attributes.get("http.route") == "/index")
    trace = _one_trace(spans, server)
    s3 = [s for s in trace if s.attributes.get("rpc.service") == "S3"]
    assert s3 and {s.attributes["http.method"] for s in s3} >= {"PUT"}
    assert all("?" not in s.attributes["http.url"] for s in s3)
    assert [s for s in trace if s.attributes.get("db.system") == "redis"]


async def test_ratio_zero_samples_nothing_downstream_either(
    traced: Traced, settings_factory: Callable[..., Any], api_factory: Any, auth: Any
) -> None:
    settings = settings_factory(
        otel_exporter_otlp_endpoint=traced.receiver.url, embedder_url=traced.embedder_url, otel_traces_sampler_arg=0
    )
    async with api_factory(settings) as api:
        try:
            response = await api.client.get("/search", params={"q": "nothing recorded"}, headers=auth())
            assert response.status_code == 200
            _flush(api, traced)
        finally:
            api.app.state.tracing.shutdown()
    # The embedder follows the api's "not sampled" flag (parent-based): nothing from either service.
    assert traced.receiver.spans == []


def test_absent_endpoint_means_no_tracer_said_once(settings_factory: Callable[..., Any], capsys: Any) -> None:
    from app.api.main import create_app

    app = create_app(settings_factory(otel_exporter_otlp_endpoint=None))
    assert not hasattr(app.state, "tracing")
    lines = [line for line in capsys.readouterr().out.splitlines() if "tracing_" in line]
    assert len(lines) == 1 and "tracing_disabled" in lines[0] and "OTEL_EXPORTER_OTLP_ENDPOINT" in lines[0]


def test_qdrant_rest_calls_are_client_spans(stub_http: Any) -> None:
    """Qdrant's REST client rides httpx: its calls are spans inside the request that makes them."""
    import asyncio

    from opentelemetry import trace
    from qdrant_client import AsyncQdrantClient

    class Qdrant(stub_http.handler_base):  # type: ignore[name-defined,misc]
        def do_GET(self) -> None:
            self._json(200, {"result": {"collections": []}, "status": "ok", "time": 0.0})

    with otlp_receiver() as receiver:
        server = stub_http.start(Qdrant, None)
        tracing = setup_tracing(_Settings(receiver.url), clients=("httpx",))
        assert tracing is not None
        try:

            async def call() -> None:
                client = AsyncQdrantClient(url=f"http://127.0.0.1:{server.port}", timeout=5, check_compatibility=False)
                tracer = tracing.provider.get_tracer("test")
                with tracer.start_as_current_span("request", kind=trace.SpanKind.SERVER):
                    await client.get_collections()
                await client.close()

            asyncio.run(call())
            assert tracing.force_flush()
        finally:
            tracing.shutdown()
            server.close()
        root = next(s for s in receiver.spans if s.name == "request")
        calls = [s for s in receiver.spans if s.kind == "client" and s.parent_id == root.span_id]
        assert calls and calls[0].attributes["http.url"].endswith("/collections")


@dataclass(frozen=True)
class _Settings:
    otel_exporter_otlp_endpoint: str
    otel_service_name: str = "visionrag-test"
    otel_traces_sampler: str = "parentbased_traceidratio"
    otel_traces_sampler_arg: float = 1.0
    environment: str = "dev"


def test_an_unknown_sampler_is_refused_naming_the_allowed_ones() -> None:
    from app.core.settings import SettingsError, load
    from app.worker.settings import WorkerSettings

    with pytest.raises(SettingsError) as exc:
        load(WorkerSettings, otel_traces_sampler="sometimes")
    assert "OTEL_TRACES_SAMPLER" in str(exc.value) and "parentbased_traceidratio" in str(exc.value)
    with pytest.raises(SettingsError) as exc:
        load(WorkerSettings, otel_traces_sampler_arg=1.5)
    assert "OTEL_TRACES_SAMPLER_ARG" in str(exc.value)


def test_httpx_instrumentation_is_removed_on_shutdown() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    tracing = setup_tracing(_Settings("http://127.0.0.1:9"), clients=("httpx",))
    assert tracing is not None and HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    tracing.shutdown()
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert httpx  # the module under test stays importable without tracing
