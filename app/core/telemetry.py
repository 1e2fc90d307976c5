"""Tracing (OpenTelemetry) and error tracking (Sentry), set up once at process start-up; each on only when configured.

Tracing starts when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP over HTTP to `<endpoint>/v1/traces`, in the cluster the
collector of infra/workloads/otel_collector.py, which forwards to AWS X-Ray). What becomes a span:
- the FastAPI server of the api and of the embedder (W3C `traceparent` continues the caller's trace);
- outgoing httpx (embedder calls, the LLM, Qdrant's REST client), Redis, botocore (ops snapshots), Qdrant's gRPC
  client, and minio's S3 calls (urllib3; see app/core/tracing_clients.py);
- one CONSUMER span per arq job in the worker, parent of the job's own calls (app/worker/job_tracing.py).
Sampling follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (parent-based ratio by default). A client call with
no request or job around it (arq's queue polling, start-up checks) never starts a trace of its own: those would be
most of the volume and answer no question. Trace ids carry their start time in the first 32 bits because X-Ray
drops ids that do not (the awsxray exporter's README, "Data Conversion").

Sentry starts when SENTRY_DSN is set, collecting no user identity, bodies or frame locals, with an event scrubber
that removes credentials, cookies, query strings, e-mail addresses and anything the log redactor would hide.
Either being off is said once in the start-up log.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from app.core.logging import REDACTED, _redact_value, get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

log = get_logger(__name__)

# OTEL_TRACES_SAMPLER values this process understands (the SDK's names); infra/workloads/pod_env.py sets the first.
Sampling = Literal[
    "parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off", "traceidratio", "always_on",
    "always_off",
]  # fmt: skip
# Outgoing-call instrumentations, by name; a process asks only for the clients it has (the embedder: none).
CLIENTS = ("httpx", "redis", "botocore", "grpc", "s3")
# A process-specific instrumentation (the worker's job spans, app/worker/job_tracing.py): applied to the provider,
# it returns the callable that removes it again.
Instrumentation = Callable[["TracerProvider"], Callable[[], None]]


class TracingSettings(Protocol):
    """What setup_tracing reads (API, worker and embedder settings all qualify)."""

    @property
    def otel_exporter_otlp_endpoint(self) -> str | None: ...
    @property
    def otel_service_name(self) -> str: ...
    @property
    def otel_traces_sampler(self) -> str: ...
    @property
    def otel_traces_sampler_arg(self) -> float: ...
    @property
    def environment(self) -> str: ...


@dataclass
class Tracing:
    """The running tracer: `shutdown()` flushes, removes every instrumentation it added and stops exporting."""

    provider: TracerProvider
    undo: list[Callable[[], None]] = field(default_factory=list)

    def force_flush(self) -> bool:
        return bool(self.provider.force_flush())

    def shutdown(self) -> None:
        for step in reversed(self.undo):
            step()
        self.undo.clear()
        self.provider.shutdown()


def sampler(name: str, ratio: float) -> Sampler:
    """The SDK sampler for OTEL_TRACES_SAMPLER=name, OTEL_TRACES_SAMPLER_ARG=ratio, wrapped by _NoOrphanClients."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    roots = {"traceidratio": TraceIdRatioBased(ratio), "always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}
    base = name.removeprefix("parentbased_")
    if base not in roots:
        raise ValueError(f"OTEL_TRACES_SAMPLER={name!r}; allowed: {', '.join(Sampling.__args__)}")  # type: ignore[attr-defined]
    return _no_orphan_clients(ParentBased(roots[base]) if name.startswith("parentbased_") else roots[base])


def _no_orphan_clients(inner: Sampler) -> Sampler:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class NoOrphanClients(Sampler):
        """Only server and consumer spans may start a trace; a client or internal span needs a parent."""

        def should_sample(  # type: ignore[no-untyped-def]
            self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid and kind not in (trace.SpanKind.SERVER, trace.SpanKind.CONSUMER):
                return SamplingResult(Decision.DROP)
            return inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"NoOrphanClients{{{inner.get_description()}}}"

    return NoOrphanClients()


def _xray_id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class XRayIdGenerator(RandomIdGenerator):
        """W3C-valid ids whose first 32 bits are the start time in epoch seconds, as X-Ray requires."""

        def generate_trace_id(self) -> int:
            return (int(time.time()) << 96) | secrets.randbits(96)

    return XRayIdGenerator()


def setup_tracing(
    settings: TracingSettings,
    *,
    app: FastAPI | None = None,
    clients: Collection[str] = CLIENTS,
    extra: Sequence[Instrumentation] = (),
) -> Tracing | None:
    """Start tracing when an endpoint is configured (else say so once and return None)."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        log.info("tracing_disabled", reason="OTEL_EXPORTER_OTLP_ENDPOINT is unset", service=settings.otel_service_name)
        return None
    unknown = sorted(set(clients) - set(CLIENTS))
    if unknown:
        raise ValueError(f"setup_tracing clients: {unknown} unknown; allowed: {', '.join(CLIENTS)}")
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from app.core.tracing_clients import instrument_clients

    chosen = sampler(settings.otel_traces_sampler, settings.otel_traces_sampler_arg)
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.otel_service_name, "deployment.environment": settings.environment}
        ),
        sampler=chosen,
        id_generator=_xray_id_generator(),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    tracing = Tracing(provider)
    if not _global_provider_is_set():
        trace.set_tracer_provider(provider)
    if app is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # Probes would be most of the traces and say nothing.
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=provider, excluded_urls="health,metrics", server_request_hook=_drop_query
        )
        tracing.undo.append(lambda: FastAPIInstrumentor.uninstrument_app(app))
        app.state.tracing = tracing
    tracing.undo.extend(instrument_clients(provider, clients))
    tracing.undo.extend(instrument(provider) for instrument in extra)
    log.info(
        "tracing_enabled",
        service=settings.otel_service_name,
        endpoint=_without_credentials(endpoint),
        sampler=chosen.get_description(),
        clients=sorted(clients),
    )
    return tracing


def _drop_query(span: Any, _scope: Any) -> None:
    """Query strings carry the user's questions (`/search?q=`): no server span keeps one."""
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.target", "http.url", "url.full"):
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def _global_provider_is_set() -> bool:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", "", "", "")) + (f":{parts.port}" if parts.port else "")


# --- Sentry --------------------------------------------------------------------------------------------------

_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"})
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _scrub_text(value: Any) -> Any:
    """Strings: credentials (the log redactor's patterns) and e-mail addresses out; containers recursively."""
    redacted = _redact_value(value)
    if isinstance(redacted, str):
        return _EMAIL.sub(REDACTED, redacted)
    if isinstance(redacted, dict):
        return {k: _scrub_text(v) for k, v in redacted.items()}
    if isinstance(redacted, list | tuple):
        return type(redacted)(_scrub_text(v) for v in redacted)
    return redacted


def _frames(event: dict[str, Any], key: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    for value in (event.get(key) or {}).get("values", []) or []:
        frames.extend((value.get("stacktrace") or {}).get("frames", []) or [])
    return frames


def scrub_event(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """Sentry before_send: drop credentials, cookies, bodies, query strings (user queries) and e-mail addresses."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: (REDACTED if k.lower() in _SENSITIVE_HEADERS else _scrub_text(v)) for k, v in headers.items()
            }
        for key in ("cookies", "data", "query_string"):
            if key in request:
                request[key] = REDACTED
        request.pop("env", None)  # REMOTE_ADDR: the user's address
        if isinstance(request.get("url"), str):
            parts = urlsplit(request["url"])
            request["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    event.pop("user", None)
    # Stack-frame locals would carry tokens, prompts and keys: drop them from every frame.
    for frame in _frames(event, "exception") + _frames(event, "threads"):
        frame.pop("vars", None)
    for value in (event.get("exception") or {}).get("values", []) or []:
        if isinstance(value.get("value"), str):
            value["value"] = _scrub_text(value["value"])
    for key in ("extra", "contexts", "breadcrumbs", "logentry", "message", "tags"):
        if key in event:
            event[key] = _scrub_text(event[key])
    return event


class SentrySettings(Protocol):
    """What setup_sentry reads: the API's, the worker's and the embedder's settings all qualify."""

    @property
    def sentry_dsn(self) -> SecretStr | None: ...
    @property
    def environment(self) -> str: ...
    @property
    def sentry_traces_sample_rate(self) -> float: ...


def setup_sentry(settings: SentrySettings, *, service: str, transport: Any = None) -> bool:
    """Start Sentry when a DSN is configured (else say so once). `transport` exists for tests (no network)."""
    if settings.sentry_dsn is None:
        log.info("error_tracking_disabled", reason="SENTRY_DSN is unset", service=service)
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        server_name=service,  # not the pod's host name: one name per service
        # No user identity, request bodies or frame locals; scrub_event removes the rest. (This is what
        # send_default_pii=False meant; sentry-sdk 2.75 deprecates that flag in favour of data_collection.)
        data_collection={"user_info": False, "http_bodies": [], "stack_frame_variables": False},
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_event,  # type: ignore[arg-type]
        max_request_body_size="never",
        **({"transport": transport} if transport is not None else {}),
    )
    sentry_sdk.set_tag("service", service)
    log.info("error_tracking_enabled", service=service, environment=settings.environment)
    return True


def sampler_names() -> Sequence[str]:
    """The allowed OTEL_TRACES_SAMPLER values (for settings validation messages)."""
    return Sampling.__args__  # type: ignore[attr-defined,no-any-return]
