"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, request spans are exported over OTLP/HTTP."""

from __future__ import annotations


def test_tracing_exports_request_spans_over_otlp_when_configured(settings_factory, stub_http) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, FastAPI and outgoing-httpx spans reach the collector (OTLP/HTTP)."""
    import asyncio

    import httpx

    from app.api.main import create_app

    received: list[tuple[str, int]] = []

    class Collector(stub_http.handler_base):  # type: ignore[name-defined,misc]
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append((self.path, len(self.rfile.read(length))))
            self._json(200, {})

    server = stub_http.start(Collector, None)
    try:
        app = create_app(settings_factory(otel_exporter_otlp_endpoint=f"http://127.0.0.1:{server.port}"))

        async def one_request() -> int:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    return (await client.get("/jobs/x")).status_code

        assert asyncio.run(one_request()) == 401
        app.state.tracer_provider.force_flush()
    finally:
        server.close()
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().uninstrument()
    assert received and received[0][0] == "/v1/traces" and received[0][1] > 0
