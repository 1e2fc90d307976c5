"""Client-side spans for the outgoing calls a process makes, by name (app/core/telemetry.py CLIENTS).

- httpx: the embedder client, the LLM (openai rides httpx) and Qdrant's REST client; injects W3C `traceparent`.
- redis: redis-py sync and asyncio clients (arq, the job store, the cache, rate limits).
- botocore: boto3 (the ops snapshot and model commands).
- grpc: Qdrant's client when QDRANT_PREFER_GRPC is on (grpc.aio).
- s3: minio, which calls urllib3's PoolManager.urlopen directly. opentelemetry-instrumentation-urllib3 has no
  release matching the pinned 0.66b2 instrumentations, so this module wraps that one method (query strings are
  never recorded: presigned URLs carry signatures there).
Each instrumentation is process-global; the returned callables remove them again (tests, shutdown).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

Undo = Callable[[], None]
TRACER = "visionrag"


def instrument_clients(provider: TracerProvider, clients: Collection[str]) -> list[Undo]:
    undo: list[Undo] = []
    for name in sorted(clients):
        undo.append(_INSTRUMENTS[name](provider))
    return undo


def _instrumentor(module: str, cls: str) -> Callable[[TracerProvider], Undo]:
    """An OpenTelemetry instrumentor, imported only when its client is asked for (each process lists its own)."""

    def install(provider: TracerProvider) -> Undo:
        instrumentor = getattr(importlib.import_module(module), cls)()
        instrumentor.instrument(tracer_provider=provider)
        return cast(Undo, instrumentor.uninstrument)

    return install


def _s3(provider: TracerProvider) -> Undo:
    import urllib3.poolmanager
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, unwrap
    from wrapt import wrap_function_wrapper

    tracer = provider.get_tracer(TRACER)

    def urlopen(wrapped: Callable[..., Any], _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method = str(kwargs.get("method", args[0] if args else "GET"))
        url = str(kwargs.get("url", args[1] if len(args) > 1 else ""))
        # Only inside a request or a job (a bare call would start a trace nobody asked for), and never twice
        # when botocore's own instrumentation already covers the call.
        if not is_http_instrumentation_enabled() or not trace.get_current_span().get_span_context().is_valid:
            return wrapped(*args, **kwargs)
        parts = urlsplit(url)
        # The same (pre-1.0 HTTP semconv) names as the httpx and botocore instrumentations, which the awsxray
        # exporter maps onto the subsegment's `http` and `aws` objects.
        attributes: dict[str, str | int] = {
            "http.method": method,
            "http.url": urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")),
            "net.peer.name": parts.hostname or "",
            "net.peer.port": parts.port or (443 if parts.scheme == "https" else 80),
            "rpc.system": "aws-api",
            "rpc.service": "S3",
        }
        with tracer.start_as_current_span(f"S3 {method}", kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
            response = wrapped(*args, **kwargs)
            status = int(getattr(response, "status", 0) or 0)
            span.set_attribute("http.status_code", status)
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return response

    wrap_function_wrapper("urllib3.poolmanager", "PoolManager.urlopen", urlopen)
    return lambda: unwrap(urllib3.poolmanager.PoolManager, "urlopen")


_INSTRUMENTS: dict[str, Callable[[TracerProvider], Undo]] = {
    "httpx": _instrumentor("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    "redis": _instrumentor("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
    "botocore": _instrumentor("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor"),
    "grpc": _instrumentor("opentelemetry.instrumentation.grpc", "GrpcAioInstrumentorClient"),
    "s3": _s3,
}
