"""Dynamic micro-batching in front of one model.

Concurrent requests each submit their items; one loop takes up to `max_batch` items (waiting at most
`max_wait_s` for a batch to fill) and runs the model on a single worker thread, so the GPU sees one batch at a
time and throughput grows with load instead of with request count. The queue is bounded: when it is full
`submit` fails at once with `Overloaded` (HTTP 503) rather than letting latency grow without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Overloaded(RuntimeError):
    pass


@dataclass
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self,
        run: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        name: str = "batch",
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.name = name
        self._queue: asyncio.Queue[_Pending[In, Out]] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(Overloaded(f"{self.name} batcher stopped"))

    async def submit(self, items: Sequence[In]) -> list[Out]:
        loop = asyncio.get_running_loop()
        if self._queue.qsize() + len(items) > self._queue.maxsize:
            raise Overloaded(f"{self.name} queue is full ({self._queue.qsize()}/{self._queue.maxsize} items)")
        pending = [_Pending(item, loop.create_future()) for item in items]
        for p in pending:
            self._queue.put_nowait(p)
        self._arrived.set()
        return list(await asyncio.gather(*(p.future for p in pending)))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # Wait on an event, not on queue.get(): cancelling a get() on timeout can drop an item.
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            live = [p for p in batch if not p.future.done()]
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self._run, [p.item for p in live])
            except Exception as exc:
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(live)
            for p, result in zip(live, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)
