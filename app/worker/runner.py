"""arq's Worker, made to ride out Redis restarts (the deployed worker and `make local` both run this).

What plain arq 0.28 does when Redis goes away (read in arq/worker.py) and what this subclass changes:
- the poll loop's first failed `zrangebyscore` ends `Worker.main()`: here a Redis error in a poll iteration is
  logged and the loop backs off (0.5 s doubling to 5 s) and polls again;
- `start_jobs` takes a slot (job counter + semaphore) before its Redis calls and only gives it back when a job
  task ends, so every failed start leaks one slot until the worker never picks a job again: here the slot is
  returned;
- `finish_job` / `finish_failed_job` fail once and leave the job queued with its in-progress key set, so no
  worker runs it until that key expires (job_timeout + 10 s, an hour): here they wait for Redis (they only
  delete, set and move keys, so writing them late is the same as writing them on time);
- the in-progress key lives `job_timeout + 10 s`: here it is a lease of `lease_s`, renewed every `lease_s / 4`
  while the job's coroutine runs, so a worker that dies mid-job blocks the job for at most `lease_s`. A job
  whose lease lapsed during a long outage is not started a second time by this worker (it still runs it).
Each Redis command already retries for ~19 s (redis-py Retry, app/services/factory.py) before any of this.
The worker also publishes its circuit breakers beside arq's heartbeat for `python -m app.worker.healthcheck`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from app.worker.bookkeeping import REDIS_DOWN, until_redis_answers

log = logging.getLogger(__name__)
POLL_BACKOFF_FIRST_S = 0.5
POLL_BACKOFF_MAX_S = 5.0
BREAKERS_SUFFIX = ":breakers"


class ResilientWorker(Worker):
    def __init__(
        self,
        *args: Any,
        lease_s: float,
        redis_outage_s: float,
        breakers: Callable[[], dict[str, str]] = dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lease_s = lease_s
        # arq sets the in-progress key with this TTL when it starts a job; the renew loop keeps it alive.
        self.in_progress_timeout_s = lease_s
        self.redis_outage_s = redis_outage_s
        self.breakers = breakers
        self.redis_down_since: float | None = None
        self._poll_backoff_s = POLL_BACKOFF_FIRST_S
        self.redis_outages = 0  # how many outages the poll loop rode out (tests, logs)

    # --- start-up and the poll loop -------------------------------------------------------------------------
    async def main(self) -> None:
        if self._pool is not None:  # a worker started while Redis is down waits for it instead of exiting
            await until_redis_answers("worker start", self.pool.ping, outage_s=float("inf"))
        renew = asyncio.create_task(self._renew_leases())
        try:
            await super().main()
        finally:
            renew.cancel()
            with contextlib.suppress(BaseException):
                await renew

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            if self.redis_down_since is None:
                self.redis_down_since = time.monotonic()
                self.redis_outages += 1
                log.warning("Redis unavailable (%s): the worker keeps polling with backoff", type(exc).__name__)
            await asyncio.sleep(self._poll_backoff_s)
            self._poll_backoff_s = min(POLL_BACKOFF_MAX_S, self._poll_backoff_s * 2)
            return
        if self.redis_down_since is not None:
            log.warning("Redis is back after %.1fs: polling again", time.monotonic() - self.redis_down_since)
            self.redis_down_since = None
            self._poll_backoff_s = POLL_BACKOFF_FIRST_S

    async def start_jobs(self, job_ids: Sequence[bytes]) -> None:  # type: ignore[override]
        for job_id_b in job_ids:
            job_id = job_id_b.decode()
            running = self.tasks.get(job_id)
            if job_id in self.job_tasks or (running is not None and not running.done()):
                # Its lease lapsed while Redis was down, but this worker is still on it: take the lease back.
                await self._renew(job_id)
                continue
            if self.job_counter >= self.max_jobs:
                return
            try:
                await super().start_jobs([job_id_b])
            except Exception:
                # arq took a slot before the Redis call that failed and would only return it with a job task.
                self.job_counter -= 1
                self.sem.release()
                raise

    # --- the in-progress lease ------------------------------------------------------------------------------
    async def _renew(self, job_id: str) -> None:
        key = in_progress_key_prefix + job_id
        lease_ms = int(self.lease_s * 1000)
        if await self.pool.pexpire(key, lease_ms):
            return
        # Expired during an outage: take it back unless another worker has (then both finish the same pages).
        if await self.pool.set(key, b"1", px=lease_ms, nx=True) and job_id not in self.job_tasks:
            await self.pool.delete(key)  # the job ended meanwhile: do not leave a lease behind

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            for job_id in list(self.job_tasks):
                try:
                    await self._renew(job_id)
                except REDIS_DOWN:
                    log.warning("lease of job %s not renewed: Redis unavailable", job_id)
                    break

    # --- arq's bookkeeping at the end of a job must land ----------------------------------------------------
    async def finish_job(self, job_id: str, *args: Any) -> None:  # type: ignore[override]
        parent = super().finish_job
        await until_redis_answers(f"arq finish {job_id}", lambda: parent(job_id, *args), outage_s=self.redis_outage_s)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        parent = super().finish_failed_job
        await until_redis_answers(
            f"arq finish {job_id}", lambda: parent(job_id, result_data), outage_s=self.redis_outage_s
        )

    # --- health ---------------------------------------------------------------------------------------------
    async def record_health(self) -> None:
        before = self._last_health_check
        await super().record_health()
        if self._last_health_check != before:  # arq wrote its heartbeat: the breakers go beside it, same TTL
            ttl_ms = int((self.health_check_interval + 1) * 1000)
            await self.pool.psetex(self.health_check_key + BREAKERS_SUFFIX, ttl_ms, json.dumps(self.breakers()))


async def supervise(
    make_worker: Callable[[], Worker], *, first_delay_s: float = 1.0, max_delay_s: float = 30.0
) -> None:
    """Run workers one after another until cancelled: if one stops on an error nobody handled, log it and start a
    fresh one (new clients, new ctx) with backoff. `make local` runs its worker in-process under this."""
    delay = first_delay_s
    while True:
        worker = make_worker()
        started = time.monotonic()
        try:
            await worker.async_run()
            return  # a burst worker that ran out of jobs
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker stopped; starting a new one in %.0fs", delay)
        finally:
            # arq's close() re-raises the cancellation of the job tasks it cancels; a stuck close must not block.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(worker.close(), timeout=30)
        await asyncio.sleep(delay)
        delay = first_delay_s if time.monotonic() - started > 60 else min(max_delay_s, delay * 2)
