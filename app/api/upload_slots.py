"""How many uploads one api process spools to its temp dir at once (UPLOAD_MAX_CONCURRENT).

Every `POST /index` streams its body (up to MAX_UPLOAD_FILES x MAX_UPLOAD_MB) into a private temp dir under /tmp
(app/api/uploads.py). In the cluster /tmp is an emptyDir with a sizeLimit, and a pod that writes past it is
evicted by the kubelet with every in-flight request. The pod's /tmp is sized for gunicorn workers x this cap x one
full upload (infra/workloads/uploads.py); this cap is what makes that size a bound rather than a hope.

An upload that finds no free slot within UPLOAD_QUEUE_TIMEOUT_S is refused with 503 + Retry-After before a byte of
its body is read (nothing is written, nothing stored); the slot is held until the upload's temp dir is removed,
whatever the outcome (accepted, refused, client gone, exception).
"""

from __future__ import annotations

import asyncio

from app.api.uploads import UploadRejected

# What a refused client is told to wait: about one upload's worth of work on a busy process.
RETRY_AFTER_S = 5


class UploadSlots:
    def __init__(self, capacity: int, *, wait_s: float) -> None:
        if capacity < 1:
            raise ValueError(f"UploadSlots.capacity: must be >= 1 (got {capacity})")
        self.capacity = capacity
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(capacity)
        self.in_use = 0

    async def acquire(self) -> None:
        """Take a slot, waiting up to `wait_s`; none free by then -> UploadRejected(503, reason="busy")."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.wait_s)
        except TimeoutError:
            raise UploadRejected(
                503,
                f"upload capacity busy: {self.capacity} uploads already in progress on this server; "
                f"retry in {RETRY_AFTER_S} s",
                reason="busy",
                retry_after_s=RETRY_AFTER_S,
            ) from None
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1
        self._slots.release()
