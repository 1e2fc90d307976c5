"""OpenTelemetry tracing (FastAPI + outgoing httpx) and Sentry error tracking, each on only when configured.

Tracing starts when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP over HTTP to `<endpoint>/v1/traces`); Sentry when
SENTRY_DSN is set, collecting no user identity, bodies or frame locals, with an event scrubber that removes
credentials, cookies, query strings and anything the log redactor would hide.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI
from pydantic import SecretStr

from app.core.logging import REDACTED, _redact_value

_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"})


class TracingSettings(Protocol):
    """What setup_tracing reads (the API's Settings)."""

    @property
    def otel_exporter_otlp_endpoint(self) -> str | None: ...
    @property
    def otel_service_name(self) -> str: ...
    @property
    def environment(self) -> str: ...


def setup_tracing(app: FastAPI, settings: TracingSettings) -> bool:
    if not settings.otel_exporter_otlp_endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.otel_service_name, "deployment.environment": settings.environment}
        )
    )
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health")
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    app.state.tracer_provider = provider
    return True


def scrub_event(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """Sentry before_send: drop credentials, cookies, bodies and query strings (they carry user queries)."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: (REDACTED if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}
        for key in ("cookies", "data", "query_string"):
            if key in request:
                request[key] = REDACTED
    event.pop("user", None)
    # Stack-frame locals would carry tokens, prompts and keys: drop them from every frame.
    for exception in (event.get("exception") or {}).get("values", []) or []:
        for frame in (exception.get("stacktrace") or {}).get("frames", []) or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values", []) or []:
        for frame in (thread.get("stacktrace") or {}).get("frames", []) or []:
            frame.pop("vars", None)
    for key in ("extra", "contexts", "breadcrumbs", "logentry"):
        if key in event:
            event[key] = _redact_value(event[key])
    return event


class SentrySettings(Protocol):
    """What setup_sentry reads: the API's Settings and the worker's WorkerSettings both qualify."""

    @property
    def sentry_dsn(self) -> SecretStr | None: ...
    @property
    def environment(self) -> str: ...
    @property
    def sentry_traces_sample_rate(self) -> float: ...


def setup_sentry(settings: SentrySettings) -> bool:
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        # No user identity, request bodies or frame locals; scrub_event removes the rest.
        data_collection={"user_info": False, "http_bodies": [], "stack_frame_variables": False},
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_event,  # type: ignore[arg-type]
        max_request_body_size="never",
    )
    return True
