"""`GET /health`: readiness with per-dependency status. The only route without auth; it never shows secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.schemas import HealthView

router = APIRouter(tags=["health"])


async def _probe(check: Callable[[], Awaitable[bool]], timeout_s: float) -> tuple[str, str | None]:
    try:
        ok = await asyncio.wait_for(check(), timeout=timeout_s)
    except TimeoutError:
        return "down", "timed out"
    except Exception as exc:
        return "down", type(exc).__name__
    return ("ok", None) if ok else ("down", "not ready")


@router.get(
    "/health",
    response_model=HealthView,
    responses={503: {"model": HealthView, "description": "a required dependency is down"}},
)
async def health(services: ServicesDep) -> JSONResponse:
    settings = services.settings
    cache = services.health
    if cache.result is not None and time.monotonic() - cache.at < settings.health_cache_ttl_s:
        body = cache.result
    else:
        async with cache.lock:
            if cache.result is None or time.monotonic() - cache.at >= settings.health_cache_ttl_s:

                async def redis_ping() -> bool:
                    return bool(await services.redis.ping())

                checks: dict[str, Callable[[], Awaitable[bool]]] = {
                    "redis": redis_ping,
                    "qdrant": services.vectors.ping,
                    "storage": services.storage.ping,
                    "embedder": services.embedder.ping,
                }
                if services.scanner is not None:
                    checks["malware-scanner"] = services.scanner.ping
                names = list(checks)
                results = await asyncio.gather(*(_probe(checks[n], settings.health_timeout_s) for n in names))
                optional = set(settings.health_optional_dependencies)
                deps = {
                    name: {"status": status, "required": name not in optional, "detail": detail}
                    for name, (status, detail) in zip(names, results, strict=True)
                }
                # An open breaker fails that dependency's calls fast even when its ping answers (e.g. an embedder
                # that just came back stays open until the breaker's reset timeout): report what callers get.
                for name, state in services.resilience.not_closed().items():
                    if name in deps and state == "opened":
                        deps[name] = {**deps[name], "status": "down", "detail": "circuit open"}
                healthy = all(d["status"] == "ok" for d in deps.values() if d["required"])
                cache.result = {"status": "ok" if healthy else "degraded", "dependencies": deps}
                cache.at = time.monotonic()
            body = cache.result
    assert body is not None
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
