"""The job's own record keeping in Redis, made to survive a Redis outage without leaving a partial state.

A job's writes fall in two kinds:
- progress and the cancel check are advisory: while Redis is down the job keeps indexing, the latest progress is
  kept in memory and written with the next write that lands (a page count is only ever replaced by a newer one),
  and "not cancelled" is assumed (the check runs again at the next batch);
- start, retrying, finish and dead letter must land: they wait for Redis with capped exponential backoff for up
  to `outage_s`. A job therefore ends as `succeeded` or `failed` with its reason once Redis is back, never as
  "running 4/5" with nobody working on it. Past `outage_s` the attempt raises `RedisUnavailable`; arq's
  in-progress lease (app/worker/runner.py) then expires and the job runs again, skipping the pages already
  indexed (deterministic point ids).

Each Redis command has already retried for ~19 s inside redis-py (app/services/factory.py) before an error
reaches this module, so a restart that takes a few seconds is invisible here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.services.jobs import JobState, JobStatus, JobStore

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a Redis that is down or restarting raises (redis-py's, plus the OS-level errors a connect may surface).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class RedisUnavailable(RuntimeError):
    """Redis stayed down longer than the worker waits for a must-land write."""


async def until_answered(
    what: str,
    fn: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[BaseException], bool],
    dependency: str,
    outage_s: float,
    first_delay_s: float = 0.5,
    max_delay_s: float = 5,
) -> T:
    """Run `fn` until it answers, backing off (doubling, capped) while it raises an error `transient` accepts;
    after `outage_s` that error is raised. Any other error is raised at once. Also the job's audit writes
    (app/worker/job_audit.py) wait this way."""
    deadline = time.monotonic() + outage_s
    delay = first_delay_s
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s unavailable (%s); trying again in %.1fs", what, dependency, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)


async def until_redis_answers(what: str, fn: Callable[[], Awaitable[T]], *, outage_s: float) -> T:
    """Run `fn` until Redis answers it, backing off between tries; `RedisUnavailable` after `outage_s`."""
    try:
        return await until_answered(
            what, fn, transient=lambda exc: isinstance(exc, REDIS_DOWN), dependency="Redis", outage_s=outage_s
        )
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"{what}: Redis unavailable for {outage_s:.0f}s ({type(exc).__name__})") from exc


class JobBook:
    """The worker's view of the JobStore (same method names as the parts of it that the pipeline calls)."""

    def __init__(self, store: JobStore, *, outage_s: float) -> None:
        self.store = store
        self.outage_s = outage_s
        self._pending: dict[str, dict[str, Any]] = {}

    # --- advisory -------------------------------------------------------------------------------------------
    async def progress(self, job_id: str, *, done: int, total: int, stage: str) -> JobStatus | None:
        self._pending[job_id] = {"done": done, "total": total, "stage": stage}
        try:
            status = await self.store.progress(job_id, done=done, total=total, stage=stage)
        except REDIS_DOWN as exc:
            log.warning("job %s: progress %s/%s kept until Redis is back (%s)", job_id, done, total, type(exc).__name__)
            return None
        self._pending.pop(job_id, None)
        return status

    async def is_cancelled(self, job_id: str) -> bool:
        try:
            return await self.store.is_cancelled(job_id)
        except REDIS_DOWN:
            return False  # unknown while Redis is down: keep working, the next batch asks again

    # --- must land ------------------------------------------------------------------------------------------
    async def _must(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await until_redis_answers(what, fn, outage_s=self.outage_s)

    async def _flush(self, job_id: str) -> None:
        pending = self._pending.pop(job_id, None)
        if pending is not None:
            await self._must(f"job {job_id} progress", lambda: self.store.progress(job_id, **pending))

    async def start(self, job_id: str, *, attempt: int) -> JobStatus:
        return await self._must(f"job {job_id} start", lambda: self.store.start(job_id, attempt=attempt))

    async def retrying(self, job_id: str, *, attempt: int, error: str) -> JobStatus:
        await self._flush(job_id)
        return await self._must(
            f"job {job_id} retrying", lambda: self.store.retrying(job_id, attempt=attempt, error=error)
        )

    async def finish(self, job_id: str, state: JobState, *, error: str = "") -> JobStatus:
        await self._flush(job_id)
        return await self._must(f"job {job_id} {state}", lambda: self.store.finish(job_id, state, error=error))

    async def dead_letter(self, job_id: str, *, request: dict[str, Any], error: str, attempts: int) -> None:
        await self._must(
            f"job {job_id} dead letter",
            lambda: self.store.dead_letter(job_id, request=request, error=error, attempts=attempts),
        )

    async def cancelled_at_start(self, job_id: str) -> bool:
        """The cancel flag before any work: must be known (a cancelled job must not index)."""
        return await self._must(f"job {job_id} cancel check", lambda: self.store.is_cancelled(job_id))
