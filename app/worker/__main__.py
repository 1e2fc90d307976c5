"""`python -m app.worker`: the arq worker plus its Prometheus endpoint on WORKER_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import start_http_server

from app.core.logging import configure_logging
from app.core.telemetry import setup_sentry, setup_tracing
from app.worker.job_tracing import trace_jobs
from app.worker.settings import get_worker_settings
from app.worker.tasks import make_worker


def main() -> None:
    settings = get_worker_settings()
    # The API's JSON log format and redaction; each job's lines carry its job id and the API's request id.
    configure_logging(settings.log_level, json=settings.log_json)
    setup_sentry(settings, service=settings.otel_service_name)
    # Every client the jobs use, plus one span per job.
    setup_tracing(settings, extra=(trace_jobs,))
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    make_worker(settings).run()


if __name__ == "__main__":
    main()
