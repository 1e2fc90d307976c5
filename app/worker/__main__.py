"""`python -m app.worker`: the arq worker plus its Prometheus endpoint on WORKER_METRICS_PORT."""

from __future__ import annotations

from arq.worker import Worker
from prometheus_client import start_http_server

from app.core.logging import configure_logging
from app.core.telemetry import setup_sentry
from app.worker.settings import get_worker_settings
from app.worker.tasks import worker_options


def main() -> None:
    settings = get_worker_settings()
    # The API's JSON log format and redaction; each job's lines carry its job id and the API's request id.
    configure_logging(settings.log_level, json=settings.log_json)
    setup_sentry(settings)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    Worker(**worker_options(settings)).run()


if __name__ == "__main__":
    main()
