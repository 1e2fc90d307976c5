"""One CONSUMER span around each job the arq worker runs (`Worker.run_job`), so a job's Redis, S3 and embedder
calls share one trace (app/core/telemetry.py `setup_tracing(..., extra=(trace_jobs,))`).

A root span, sampled by the worker's own ratio: the job is its own unit of work, often minutes after the request
that enqueued it. When that request was traced and sampled, the job carries its W3C context (`trace_context`,
app/services/jobs.py `enqueue_index`) and the span *links* to it, as the OpenTelemetry messaging conventions ask
of a "process" span (docs/workloads.md "Tracing and error tracking"). The link is added once run_job has read the
job (arq's `deserialize_job_raw`, called inside the span), so no second Redis read is needed; the worker's
samplers (app/core/telemetry.py) do not look at links, so a link added after the start samples the same. A
missing or malformed carrier only means no link. Wrapping the method (not the job functions in app/worker/tasks.py)
covers every job and the worker subclass alike; the span ends when run_job returns, after arq has stored the
result or scheduled the retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from app.core.trace_context import span_context_of

TRACER = "visionrag.worker"


def trace_jobs(provider: TracerProvider) -> Callable[[], None]:
    """Start wrapping `arq.worker.Worker.run_job`; the returned callable removes the wrapper."""
    import arq.worker
    from opentelemetry.context import Context
    from opentelemetry.instrumentation.utils import unwrap
    from wrapt import wrap_function_wrapper

    tracer = provider.get_tracer(TRACER)

    async def run_job(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        job_id = str(kwargs.get("job_id", args[0] if args else ""))
        attributes = {
            "messaging.system": "arq",
            "messaging.operation": "process",
            "messaging.destination.name": str(getattr(instance, "queue_name", "")),
            "messaging.message.id": job_id,
        }
        with tracer.start_as_current_span(
            "arq job", kind=trace.SpanKind.CONSUMER, attributes=attributes, context=Context()
        ):
            return await wrapped(*args, **kwargs)

    def deserialize_job_raw(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        job = wrapped(*args, **kwargs)  # (function, args, kwargs, job_try, enqueue_time_ms); run_job's only reader
        _link_creation(trace.get_current_span(), job[2])
        return job

    wrap_function_wrapper("arq.worker", "Worker.run_job", run_job)
    wrap_function_wrapper("arq.worker", "deserialize_job_raw", deserialize_job_raw)

    def stop() -> None:
        unwrap(arq.worker.Worker, "run_job")
        unwrap(arq.worker, "deserialize_job_raw")

    return stop


def _link_creation(span: trace.Span, job_kwargs: object) -> None:
    """Link the job's span to the sampled span that enqueued it, named by the job's `trace_context`."""
    if not isinstance(span, ReadableSpan) or not span.is_recording():
        return  # sampled out, or not inside run_job's span
    attributes = span.attributes or {}
    if attributes.get("messaging.system") != "arq":
        return
    carrier = job_kwargs.get("trace_context") if isinstance(job_kwargs, dict) else None
    creation = span_context_of(carrier)
    # An unsampled request exported nothing: a link to it would point at no span.
    if creation is None or not creation.trace_flags.sampled:
        return
    span.add_link(creation, {"messaging.message.id": str(attributes.get("messaging.message.id", ""))})
