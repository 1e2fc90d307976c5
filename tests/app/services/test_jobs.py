"""JobStore and enqueue_index against a real redis-server (and arq's real enqueue)."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from arq.connections import RedisSettings, create_pool
from redis.asyncio import Redis

from app.services.jobs import INDEX_FUNCTION, QUEUE_NAME, JobStore, enqueue_index


@pytest_asyncio.fixture(loop_scope="function")
async def redis(clean_redis):
    client = Redis.from_url(clean_redis)
    yield client
    await client.aclose()


async def test_lifecycle_and_progress(redis):
    store = JobStore(redis)
    created = await store.create("j1", document_id="d1", filename="a.pdf", owner="alice")
    assert (created.state, created.pages_done, created.owner) == ("queued", 0, "alice")
    await store.start("j1", attempt=1)
    status = await store.progress("j1", done=3, total=4, stage="embedding")
    assert (status.state, status.pages_done, status.pages_total, status.progress) == ("running", 3, 4, 0.75)
    done = await store.finish("j1", "succeeded")
    assert done.terminal and done.to_dict()["progress"] == 0.75
    assert (await store.get("j1")) == done
    assert await store.get("missing") is None
    assert 0 < await redis.ttl("visionrag:job:j1") <= store.ttl_s
    with pytest.raises(ValueError, match="terminal states"):
        await store.finish("j1", "running")  # type: ignore[arg-type]


async def test_cancel_flag(redis):
    store = JobStore(redis)
    await store.create("j2", document_id="d", filename="f.pdf", owner="o")
    assert await store.request_cancel("j2") is True
    assert await store.is_cancelled("j2")
    # A job that never started is cancelled on the spot; the worker will also see the flag.
    status = await store.get("j2")
    assert status is not None and status.state == "cancelled"
    assert await store.request_cancel("j2") is False
    assert await store.request_cancel("nope") is False
    await store.create("j3", document_id="d", filename="f.pdf", owner="o")
    await store.start("j3", attempt=1)
    assert await store.request_cancel("j3") is True
    status = await store.get("j3")
    assert status is not None and status.state == "running"


async def test_dead_letters_are_bounded(redis):
    store = JobStore(redis, dead_letter_max=2)
    for n in range(3):
        await store.dead_letter(f"j{n}", request={"document_id": "d"}, error="boom", attempts=5)
    letters = await store.dead_letters()
    assert [x["job_id"] for x in letters] == ["j2", "j1"]
    assert letters[0]["attempts"] == 5 and letters[0]["request"] == {"document_id": "d"}


async def test_watch_streams_changes_until_terminal(redis):
    store = JobStore(redis)
    await store.create("j4", document_id="d", filename="f.pdf", owner="o")
    seen: list[str] = []

    async def consume() -> None:
        async for status in store.watch("j4", timeout_s=5):
            seen.append(f"{status.state}:{status.pages_done}")

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await store.start("j4", attempt=1)
    await store.progress("j4", done=1, total=2, stage="embedding")
    await store.finish("j4", "succeeded")
    await asyncio.wait_for(task, 5)
    assert seen[0] == "queued:0" and seen[-1] == "succeeded:1" and "running:1" in seen


async def test_enqueue_index_records_and_queues_once(clean_redis, redis):
    pool = await create_pool(RedisSettings.from_dsn(clean_redis))
    store = JobStore(redis)
    kwargs = {
        "job_id": "j5",
        "document_id": "d5",
        "object_key": "uploads/d5/a.pdf",
        "filename": "a.pdf",
        "owner": "alice",
    }
    status = await enqueue_index(pool, store, **kwargs, request_id="req-j5")
    assert status.state == "queued"
    await enqueue_index(pool, store, **kwargs)
    jobs = await pool.queued_jobs(queue_name=QUEUE_NAME)
    assert len(jobs) == 1
    # The API request's id rides along so the worker's log lines can be joined with the API's.
    assert jobs[0].function == INDEX_FUNCTION and jobs[0].kwargs == {**kwargs, "request_id": "req-j5"}
    await pool.aclose()


def test_ttl_must_be_sane():
    with pytest.raises(ValueError, match="ttl_s=1"):
        JobStore(None, ttl_s=1)  # type: ignore[arg-type]
