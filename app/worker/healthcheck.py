"""Container healthcheck of the worker: arq writes a heartbeat key every `health_check_interval`; exit 0 while
it is fresh. `python -m app.worker.healthcheck`.

It also prints one JSON line: `ok`, or `degraded` with the reason when a circuit breaker of the worker (the
embedder's) is open or half-open. Degraded still exits 0: this is a liveness check, and restarting the worker
does not bring a cold-starting embedder back sooner; the jobs wait for it with backoff.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app.services.factory import redis_client
from app.worker.runner import BREAKERS_SUFFIX
from app.worker.settings import WorkerSettings, get_worker_settings


async def check(settings: WorkerSettings) -> tuple[int, dict[str, Any]]:
    key = f"{settings.worker_queue_name}:health-check"
    redis = redis_client(settings.redis_url, timeout_s=settings.redis_timeout_s)
    try:
        heartbeat, breakers_raw = await redis.mget(key, key + BREAKERS_SUFFIX)
    except Exception as exc:  # Redis down: the heartbeat cannot be read
        return 1, {"status": "down", "reason": f"redis: {type(exc).__name__}"}
    finally:
        await redis.aclose()
    if not heartbeat:
        return 1, {"status": "down", "reason": "no heartbeat from the worker"}
    breakers: dict[str, str] = json.loads(breakers_raw) if breakers_raw else {}
    if breakers:
        reasons = ", ".join(f"{name} circuit {state}" for name, state in sorted(breakers.items()))
        return 0, {"status": "degraded", "reason": reasons, "breakers": breakers}
    return 0, {"status": "ok"}


def main() -> int:
    code, report = asyncio.run(check(get_worker_settings()))
    print(json.dumps(report))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
