"""The W3C trace context an indexing job carries from the api request that enqueued it to the worker that runs it.

Only `traceparent` and `tracestate` travel (the W3C propagator itself, never the global one, whose baggage would
copy whatever a client sent in a `baggage` header into Redis). The worker reads the carrier defensively: a job
from an older api has none, and anything else that is not a valid traceparent is ignored, never an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

FIELDS = ("traceparent", "tracestate")
# W3C Trace Context: traceparent is 55 characters; platforms should propagate at least 512 of tracestate.
MAX_VALUE_CHARS = 512


def current_carrier() -> dict[str, str] | None:
    """The current span's context as `{"traceparent": ..., "tracestate": ...}`; None when nothing is traced."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    clean = {k: v for k, v in carrier.items() if k in FIELDS and len(v) <= MAX_VALUE_CHARS}
    return clean if "traceparent" in clean else None


def span_context_of(carrier: object) -> SpanContext | None:
    """The span context a job's carrier names, or None when it is missing or malformed."""
    if not isinstance(carrier, dict):
        return None
    clean = {k: v for k, v in carrier.items() if k in FIELDS and isinstance(v, str) and len(v) <= MAX_VALUE_CHARS}
    if "traceparent" not in clean:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    span_context = trace.get_current_span(TraceContextTextMapPropagator().extract(clean)).get_span_context()
    return span_context if span_context.is_valid else None
