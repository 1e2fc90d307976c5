"""`python -m app.worker`: the arq worker plus its Prometheus endpoint on WORKER_METRICS_PORT."""

from __future__ import annotations

import logging

from arq.worker import Worker
from prometheus_client import start_http_server

from app.worker.settings import get_worker_settings
from app.worker.tasks import worker_options


def main() -> None:
    settings = get_worker_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    Worker(**worker_options(settings)).run()


if __name__ == "__main__":
    main()
