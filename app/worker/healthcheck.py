"""Container healthcheck of the worker: arq writes a heartbeat key every `health_check_interval`; exit 0 while
it is fresh. `python -m app.worker.healthcheck`."""

from __future__ import annotations

import asyncio

from arq.worker import async_check_health

from app.services.factory import redis_settings
from app.worker.settings import get_worker_settings


def main() -> int:
    settings = get_worker_settings()
    return asyncio.run(
        async_check_health(
            redis_settings(settings),
            health_check_key=f"{settings.worker_queue_name}:health-check",
            queue_name=settings.worker_queue_name,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
