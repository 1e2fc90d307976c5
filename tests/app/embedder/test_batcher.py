from __future__ import annotations

import asyncio
import threading

import pytest

from app.embedder.batcher import MicroBatcher, Overloaded


async def test_concurrent_requests_share_batches():
    seen: list[int] = []

    def run(items):
        seen.append(len(items))
        return [i * 2 for i in items]

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.05, max_queue=100)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(4)))
    await batcher.stop()
    assert results == [[i * 2, (i + 100) * 2] for i in range(4)]
    assert sum(seen) == 8 and max(seen) <= 4 and len(seen) == 2


async def test_one_model_call_at_a_time():
    active, peak = 0, 0
    lock = threading.Lock()

    def run(items):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        threading.Event().wait(0.01)
        with lock:
            active -= 1
        return items

    batcher = MicroBatcher(run, max_batch=2, max_wait_s=0, max_queue=100)
    batcher.start()
    await asyncio.gather(*(batcher.submit([i]) for i in range(10)))
    await batcher.stop()
    assert peak == 1


async def test_errors_reach_the_callers_and_the_loop_survives():
    def run(items):
        if "bad" in items:
            raise ValueError("bad input")
        return items

    batcher = MicroBatcher(run, max_batch=8, max_wait_s=0, max_queue=10)
    batcher.start()
    with pytest.raises(ValueError, match="bad input"):
        await batcher.submit(["bad"])
    assert await batcher.submit(["ok"]) == ["ok"]
    await batcher.stop()


async def test_full_queue_fails_fast():
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items, max_batch=1, max_wait_s=0, max_queue=3)
    with pytest.raises(Overloaded, match="queue is full"):
        await batcher.submit([1, 2, 3, 4])
