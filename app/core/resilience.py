"""How the app calls its dependencies: one HTTP client config, bounded retries, circuit breakers.

- `make_async_client` is the one place outgoing httpx clients are configured: explicit connect/read timeouts,
  bounded pools, no redirects, and the current request id forwarded as `X-Request-ID`.
- `Resilience.call(dependency, fn, timeout_s=..., idempotent=...)` wraps one call: a circuit breaker per
  dependency (purgatory), retries with exponential backoff + jitter for idempotent calls (tenacity) on
  transient errors only, and an overall deadline. Anything that still fails transiently, or an open breaker,
  becomes `DependencyUnavailable`, which the API turns into a fast 503 with the dependency's name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from app.core.logging import get_logger, request_id_var

T = TypeVar("T")
log = get_logger(__name__)


class DependencyUnavailable(Exception):
    """A dependency is down, too slow, or its breaker is open. Maps to 503 naming the dependency."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None) or getattr(response, "status", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying and counting against a breaker: the dependency, not the request, is at fault."""
    if isinstance(exc, DependencyUnavailable | OpenedState):
        return False
    if isinstance(exc, TimeoutError | ConnectionError | httpx.TransportError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return True
    name = type(exc).__name__
    module = type(exc).__module__
    # Service clients (app/services) signal "the dependency, not the input" with *Unavailable errors.
    if name.endswith("Unavailable"):
        return True
    if module.startswith("redis") and name in {"ConnectionError", "TimeoutError", "BusyLoadingError"}:
        return True
    if module.startswith("urllib3"):
        return True
    if module.startswith("minio") and name == "ServerError":
        return True
    if module.startswith("qdrant_client") and name == "ResponseHandlingException":
        return True
    if module.startswith("openai") and name in {"APIConnectionError", "APITimeoutError"}:
        return True
    status = _status_of(exc)
    return status is not None and (status >= 500 or status == 429)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    status = _status_of(exc)
    if status is not None:
        return f"{type(exc).__name__} (HTTP {status})"
    return type(exc).__name__


class Resilience:
    """Breakers + retries for every dependency of one process (breaker state is per process)."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        retry_attempts: int = 3,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        on_state_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.retry_attempts = retry_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        # Client errors (bad input, 404) say nothing about the dependency's health: never trip on them.
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=failure_threshold,
            default_ttl=reset_timeout_s,
            exclude=[(Exception, lambda exc: not is_transient(exc))],
        )
        self._states: dict[str, str] = {}
        self._on_state_change = on_state_change

        def _hook(name: str, event_type: str, event: Any) -> None:
            if event_type == "state_changed":
                state = str(getattr(event, "state", "unknown"))
                self._states[name] = state
                log.warning("circuit_breaker_state", dependency=name, state=state)
                if self._on_state_change is not None:
                    self._on_state_change(name, state)

        self._breakers.add_listener(_hook)

    def state(self, dependency: str) -> str:
        return self._states.get(dependency, "closed")

    def not_closed(self) -> dict[str, str]:
        """Breakers that are open or half-open (dependency -> state), for health reports."""
        return {name: state for name, state in self._states.items() if state != "closed"}

    async def call(
        self,
        dependency: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout_s: float,
        idempotent: bool = True,
    ) -> T:
        """Run `fn()` under `dependency`'s breaker with an overall deadline of `timeout_s` seconds."""
        deadline = time.monotonic() + timeout_s
        attempts = self.retry_attempts if idempotent else 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(timeout_s),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.backoff_initial_s
            ),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"{dependency}: deadline of {timeout_s}s spent")
                    breaker = await self._breakers.get_breaker(dependency)
                    async with breaker:
                        return await asyncio.wait_for(fn(), timeout=remaining)
        except OpenedState:
            raise DependencyUnavailable(dependency, "circuit open") from None
        except Exception as exc:
            if is_transient(exc):
                raise DependencyUnavailable(dependency, _describe(exc)) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


async def _forward_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "X-Request-ID" not in request.headers:
        request.headers["X-Request-ID"] = request_id


def http_timeout(*, connect_s: float, read_s: float) -> httpx.Timeout:
    return httpx.Timeout(read_s, connect=connect_s, pool=connect_s)


def make_async_client(
    *,
    base_url: str = "",
    connect_timeout_s: float = 2.0,
    read_timeout_s: float = 15.0,
    max_connections: int = 100,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The shared outgoing HTTP client config (timeouts, pool bounds, request id, no redirects)."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=http_timeout(connect_s=connect_timeout_s, read_s=read_timeout_s),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max(1, max_connections // 2)),
        headers=headers,
        follow_redirects=False,
        event_hooks={"request": [_forward_request_id]},
    )
