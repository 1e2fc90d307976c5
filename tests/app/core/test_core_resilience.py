"""Retries only on transient errors and only for idempotent calls; breakers open and recover; deadlines hold."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.core.resilience import DependencyUnavailable, Resilience, is_transient, make_async_client


def _resilience(**kwargs) -> Resilience:
    defaults = {
        "failure_threshold": 3,
        "reset_timeout_s": 0.3,
        "retry_attempts": 3,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
    }
    return Resilience(**{**defaults, **kwargs})


async def test_transient_errors_are_retried_then_succeed() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionRefusedError("down")
        return "ok"

    assert await _resilience().call("dep", flaky, timeout_s=2) == "ok"
    assert calls == 3


async def test_non_idempotent_calls_are_not_retried() -> None:
    calls = 0

    async def post() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("reset")

    with pytest.raises(DependencyUnavailable) as err:
        await _resilience().call("llm", post, timeout_s=2, idempotent=False)
    assert calls == 1 and err.value.dependency == "llm"


async def test_client_errors_pass_through_and_do_not_trip_the_breaker() -> None:
    resilience = _resilience(failure_threshold=1)

    async def bad_input() -> None:
        raise ValueError("bad query")

    for _ in range(3):
        with pytest.raises(ValueError):
            await resilience.call("dep", bad_input, timeout_s=1)
    assert resilience.state("dep") == "closed"


async def test_breaker_opens_fails_fast_and_recovers() -> None:
    resilience = _resilience(retry_attempts=1)
    healthy = False
    calls = 0

    async def dependency() -> str:
        nonlocal calls
        calls += 1
        if not healthy:
            raise httpx.ConnectError("refused")
        return "back"

    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await resilience.call("qdrant", dependency, timeout_s=1)
    assert resilience.state("qdrant") == "opened"
    before = calls
    with pytest.raises(DependencyUnavailable) as err:
        await resilience.call("qdrant", dependency, timeout_s=1)
    assert err.value.reason == "circuit open" and calls == before
    await asyncio.sleep(0.35)
    healthy = True
    assert await resilience.call("qdrant", dependency, timeout_s=1) == "back"
    assert resilience.state("qdrant") == "closed"


async def test_overall_deadline_bounds_a_hanging_dependency() -> None:
    async def hang() -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as err:
        await _resilience().call("storage", hang, timeout_s=0.3)
    assert time.monotonic() - started < 1.0
    assert err.value.reason == "timed out"


def test_transient_classification() -> None:
    request = httpx.Request("GET", "http://x")
    assert is_transient(httpx.HTTPStatusError("x", request=request, response=httpx.Response(503, request=request)))
    assert is_transient(httpx.HTTPStatusError("x", request=request, response=httpx.Response(429, request=request)))
    assert not is_transient(httpx.HTTPStatusError("x", request=request, response=httpx.Response(404, request=request)))
    assert is_transient(TimeoutError()) and is_transient(httpx.ReadTimeout("slow"))
    assert not is_transient(KeyError("missing")) and not is_transient(PermissionError())


async def test_shared_client_forwards_request_id_and_has_bounded_timeouts() -> None:
    from app.core.logging import request_id_var

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return httpx.Response(200)

    client = make_async_client(connect_timeout_s=1.5, read_timeout_s=4)
    client._transport = httpx.MockTransport(handler)
    token = request_id_var.set("rid-abcdef123")
    try:
        await client.get("http://service/ping")
    finally:
        request_id_var.reset(token)
        await client.aclose()
    assert seen == ["rid-abcdef123"]
    assert client.timeout.connect == 1.5 and client.timeout.read == 4
    assert client.follow_redirects is False
