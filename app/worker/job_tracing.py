"""One CONSUMER span around each job the arq worker runs (`Worker.run_job`), so a job's Redis, S3 and embedder
calls share one trace (app/core/telemetry.py `setup_tracing(..., extra=(trace_jobs,))`).

A root span even when the enqueuing request was not traced: the job is its own unit of work, sampled by the
worker's own ratio. Wrapping the method (not the job functions in app/worker/tasks.py) covers every job and the
worker subclass alike; the span ends when run_job returns, after arq has stored the result or scheduled the retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

TRACER = "visionrag.worker"


def trace_jobs(provider: TracerProvider) -> Callable[[], None]:
    """Start wrapping `arq.worker.Worker.run_job`; the returned callable removes the wrapper."""
    import arq.worker
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
        with tracer.start_as_current_span("arq job", kind=trace.SpanKind.CONSUMER, attributes=attributes):
            return await wrapped(*args, **kwargs)

    wrap_function_wrapper("arq.worker", "Worker.run_job", run_job)
    return lambda: unwrap(arq.worker.Worker, "run_job")
