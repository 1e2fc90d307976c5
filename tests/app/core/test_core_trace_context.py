"""The job's trace carrier (app/core/trace_context.py): only traceparent/tracestate leave, anything odd is ignored."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from app.core.trace_context import current_carrier, span_context_of

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_nothing_traced_means_no_carrier() -> None:
    assert current_carrier() is None


def test_the_carrier_names_the_current_span_and_never_baggage() -> None:
    tracer = TracerProvider().get_tracer("test")
    token = context.attach(baggage.set_baggage("user.email", "alice@example.com"))
    try:
        with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as span:
            carrier = current_carrier()
            expected = span.get_span_context()
    finally:
        context.detach(token)
    assert carrier is not None and set(carrier) <= {"traceparent", "tracestate"}
    assert "alice" not in repr(carrier)
    parsed = span_context_of(carrier)
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.is_remote) == (expected.trace_id, expected.span_id, True)


def test_a_well_formed_carrier_is_read() -> None:
    parsed = span_context_of({"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
    assert parsed is not None and parsed.trace_flags.sampled
    assert format(parsed.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert parsed.trace_state.get("vendor") == "1"


@pytest.mark.parametrize(
    "carrier",
    [
        None,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        [TRACEPARENT],
        {},
        {"tracestate": "vendor=1"},
        {"traceparent": "garbage"},
        {"traceparent": 42},
        {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
        {"traceparent": TRACEPARENT + " " * 600},
        {"Traceparent": TRACEPARENT},
        {b"traceparent": TRACEPARENT},
    ],
)
def test_a_missing_or_malformed_carrier_is_ignored(carrier: Any) -> None:
    assert span_context_of(carrier) is None
    assert not trace.get_current_span().get_span_context().is_valid
