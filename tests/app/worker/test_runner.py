"""ResilientWorker and its supervisor against a real redis-server (the fault tests in
tests/app/integration/test_indexing_faults.py kill and restart it mid-job)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.worker.healthcheck import check
from app.worker.runner import supervise
from app.worker.settings import WorkerSettings
from app.worker.tasks import make_worker


def _settings(redis_url: str, **extra: Any) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url, worker_metrics_port=0, worker_redis_retries=0, redis_timeout_s=1, **extra
    )


async def test_a_failed_job_start_gives_its_slot_back(closed_port: int) -> None:
    """Plain arq keeps the slot of a start whose Redis call failed; after max_jobs such failures it never picks a
    job again."""
    worker = make_worker(_settings(f"redis://127.0.0.1:{closed_port}/0", worker_max_jobs=1), handle_signals=False)
    free = worker.sem._value
    for _ in range(3):
        with pytest.raises(RedisConnectionError):
            await worker.start_jobs([b"job-1"])
    assert worker.job_counter == 0 and worker.sem._value == free
    await worker.pool.aclose()


async def test_the_supervisor_starts_a_new_worker_when_one_stops(clean_redis: str) -> None:
    made: list[Any] = []

    async def fails_once(ctx: dict[str, Any]) -> None:
        if len(made) == 1:
            raise RuntimeError("start-up failed")

    def new_worker() -> Any:
        worker = make_worker(_settings(clean_redis), handle_signals=False, burst=True, on_startup=fails_once)
        made.append(worker)
        return worker

    await supervise(new_worker, first_delay_s=0.01)
    assert len(made) == 2  # the second ran its (empty) burst and returned


async def test_worker_health_reports_heartbeat_and_open_breakers(clean_redis: str, closed_port: int) -> None:
    settings = _settings(clean_redis)
    assert await check(settings) == (1, {"status": "down", "reason": "no heartbeat from the worker"})
    worker = make_worker(settings, handle_signals=False, health_check_interval=0)
    await worker.record_health()
    assert await check(settings) == (0, {"status": "ok"})
    worker.breakers = lambda: {"embedder": "opened"}
    await worker.record_health()
    code, report = await check(settings)
    assert code == 0  # liveness: the worker is alive and waits for the embedder
    assert report == {"status": "degraded", "reason": "embedder circuit opened", "breakers": {"embedder": "opened"}}
    await worker.pool.aclose()
    down = await check(_settings(f"redis://127.0.0.1:{closed_port}/0"))
    assert down[0] == 1 and down[1]["status"] == "down" and "redis" in json.dumps(down[1])
