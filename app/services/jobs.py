"""Indexing job state in Redis (shared by every API replica and worker) and the arq enqueue call.

One hash per job holds state and progress; every change is also published on the job's channel so
`GET /progress/stream/{job_id}` can push updates instead of polling. Cancellation is a flag the worker checks
between batches. Jobs that exhaust their retries leave a dead-letter record an operator can inspect and replay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from app.core.logging import request_id_var
from app.core.trace_context import current_carrier

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
QUEUE_NAME = "visionrag:queue:index"
INDEX_FUNCTION = "index_document"
REINDEX_FUNCTION = "reindex_collection"


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str
    document_id: str = ""
    filename: str = ""
    owner: str = ""
    stage: str = ""
    pages_done: int = 0
    pages_total: int = 0
    attempt: int = 0
    error: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> float:
        return self.pages_done / self.pages_total if self.pages_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "progress": round(self.progress, 4)}


_INT_FIELDS = ("pages_done", "pages_total", "attempt")
_FLOAT_FIELDS = ("created_at", "updated_at")


def _decode(raw: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        k = key.decode() if isinstance(key, bytes) else str(key)
        v = value.decode() if isinstance(value, bytes) else value
        if k in _INT_FIELDS:
            out[k] = int(v)
        elif k in _FLOAT_FIELDS:
            out[k] = float(v)
        else:
            out[k] = v
    return out


class JobStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "visionrag:job:",
        ttl_s: int = 7 * 24 * 3600,
        dead_letter_max: int = 1000,
    ) -> None:
        if ttl_s < 60:
            raise ValueError(f"ttl_s={ttl_s}: must be >= 60")
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.dead_letter_max = dead_letter_max

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}"

    def channel(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}:events"

    @property
    def dead_letter_key(self) -> str:
        return f"{self.prefix}dead-letter"

    async def _write(self, job_id: str, fields: dict[str, Any]) -> JobStatus:
        fields = {**fields, "job_id": job_id, "updated_at": time.time()}
        key = self._key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={k: str(v) for k, v in fields.items()})
            pipe.expire(key, self.ttl_s)
            pipe.hgetall(key)
            results = await pipe.execute()
        status = JobStatus(**_decode(results[-1]))
        await self.redis.publish(self.channel(job_id), json.dumps(status.to_dict()))
        return status

    async def create(self, job_id: str, *, document_id: str, filename: str, owner: str) -> JobStatus:
        now = time.time()
        return await self._write(
            job_id,
            {
                "job_id": job_id,
                "state": "queued",
                "document_id": document_id,
                "filename": filename,
                "owner": owner,
                "stage": "queued",
                "pages_done": 0,
                "pages_total": 0,
                "attempt": 0,
                "error": "",
                "created_at": now,
            },
        )

    async def get(self, job_id: str) -> JobStatus | None:
        raw: dict[Any, Any] = await self.redis.hgetall(self._key(job_id))  # type: ignore[misc]
        return JobStatus(**_decode(raw)) if raw else None

    async def start(self, job_id: str, *, attempt: int) -> JobStatus:
        return await self._write(job_id, {"state": "running", "stage": "starting", "attempt": attempt, "error": ""})

    async def progress(self, job_id: str, *, done: int, total: int, stage: str) -> JobStatus:
        return await self._write(job_id, {"pages_done": done, "pages_total": total, "stage": stage})

    async def retrying(self, job_id: str, *, attempt: int, error: str) -> JobStatus:
        return await self._write(job_id, {"state": "queued", "stage": "retrying", "attempt": attempt, "error": error})

    async def finish(self, job_id: str, state: JobState, *, error: str = "") -> JobStatus:
        if state not in TERMINAL_STATES:
            raise ValueError(f"state={state!r}: allowed terminal states are {sorted(TERMINAL_STATES)}")
        return await self._write(job_id, {"state": state, "stage": state, "error": error})

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the worker to stop; False when the job is unknown or already finished."""
        status = await self.get(job_id)
        if status is None or status.terminal:
            return False
        await self.redis.set(f"{self._key(job_id)}:cancel", "1", ex=self.ttl_s)
        if status.state == "queued" and status.attempt == 0:
            await self.finish(job_id, "cancelled")
        return True

    async def is_cancelled(self, job_id: str) -> bool:
        return bool(await self.redis.exists(f"{self._key(job_id)}:cancel"))

    async def dead_letter(self, job_id: str, *, request: dict[str, Any], error: str, attempts: int) -> None:
        record = {"job_id": job_id, "request": request, "error": error, "attempts": attempts, "at": time.time()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.dead_letter_key, json.dumps(record))
            pipe.ltrim(self.dead_letter_key, 0, self.dead_letter_max - 1)
            await pipe.execute()

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        raw: list[Any] = await self.redis.lrange(self.dead_letter_key, 0, limit - 1)  # type: ignore[misc]
        return [json.loads(item) for item in raw]

    async def watch(self, job_id: str, *, timeout_s: float = 15.0) -> AsyncIterator[JobStatus]:
        """Yield the current status, then every change until a terminal state (or `timeout_s` of silence)."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel(job_id))
        try:
            current = await self.get(job_id)
            if current is None:
                return
            yield current
            if current.terminal:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    # Silence: re-read, in case a change was published before we subscribed.
                    latest = await self.get(job_id)
                    if latest is None or latest == current:
                        return
                    current = latest
                else:
                    # Returns None early for ignored subscribe confirmations, hence the deadline loop.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
                    if message is None:
                        continue
                    data = json.loads(message["data"])
                    current = JobStatus(**{k: v for k, v in data.items() if k != "progress"})
                deadline = loop.time() + timeout_s
                yield current
                if current.terminal:
                    return
        finally:
            await pubsub.unsubscribe(self.channel(job_id))
            await pubsub.aclose()


async def enqueue_index(
    pool: Any,
    store: JobStore,
    *,
    job_id: str,
    document_id: str,
    object_key: str,
    filename: str,
    owner: str,
    queue_name: str = QUEUE_NAME,
    request_id: str | None = None,
    trace_context: dict[str, str] | None = None,
) -> JobStatus:
    """Record the job as queued and hand it to arq. `pool` is an `arq.ArqRedis`.

    arq deduplicates on `_job_id`, so a client retrying the same upload cannot start two jobs. The request id
    (default: the one the API's middleware bound for the current request) travels with the job so the worker's
    log lines can be joined with the API's. So does the trace context (default: the current span's,
    app/core/trace_context.py), so the worker's job span links to the request's trace; omitted when nothing is traced.
    """
    if request_id is None:
        request_id = request_id_var.get()
    if trace_context is None:
        trace_context = current_carrier()
    traced = {"trace_context": trace_context} if trace_context else {}
    status = await store.create(job_id, document_id=document_id, filename=filename, owner=owner)
    await pool.enqueue_job(
        INDEX_FUNCTION,
        job_id=job_id,
        document_id=document_id,
        object_key=object_key,
        filename=filename,
        owner=owner,
        request_id=request_id,
        **traced,
        _job_id=job_id,
        _queue_name=queue_name,
    )
    return status


async def enqueue_reindex(
    pool: Any, store: JobStore, *, job_id: str, owner: str, drop_old: bool = False, queue_name: str = QUEUE_NAME
) -> JobStatus:
    """Queue the admin reindex job (re-embed everything into a new collection version, then switch the alias)."""
    status = await store.create(job_id, document_id="*", filename="", owner=owner)
    await pool.enqueue_job(REINDEX_FUNCTION, job_id=job_id, drop_old=drop_old, _job_id=job_id, _queue_name=queue_name)
    return status
