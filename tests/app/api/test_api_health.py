"""GET /health: per-dependency status against the real parts, 503 when a required one is down, no secrets."""

from __future__ import annotations

import contextlib
import time


async def test_health_ok_with_all_parts_up(api, seaweed_s3) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {name: dep["status"] for name, dep in body["dependencies"].items()} == {
        "redis": "ok",
        "qdrant": "ok",
        "storage": "ok",
        "embedder": "ok",
    }
    text = response.text
    for secret in (seaweed_s3.secret_key, seaweed_s3.access_key, api.settings.openai_api_key.get_secret_value()):
        assert secret not in text


async def test_health_503_names_the_dependency_that_is_down_within_its_timeout(
    settings_factory, api_factory, closed_port
) -> None:
    settings = settings_factory(redis_url=f"redis://127.0.0.1:{closed_port}/0", health_timeout_s=1.0)
    async with api_factory(settings) as api:
        started = time.monotonic()
        response = await api.client.get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["redis"]["status"] == "down"
    assert body["dependencies"]["storage"]["status"] == "ok"
    assert elapsed < 3.0


async def test_optional_dependency_down_is_reported_but_not_503(settings_factory, api_factory, embedder_stub) -> None:
    embedder_stub.healthy = False
    async with api_factory(settings_factory(health_optional_dependencies="embedder")) as api:
        response = await api.client.get("/health")
    assert response.status_code == 200
    assert response.json()["dependencies"]["embedder"] == {"status": "down", "required": False, "detail": "not ready"}


async def test_security_headers_and_request_id_on_every_response(api) -> None:
    for response in (await api.client.get("/health"), await api.client.get("/search?q=x")):
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert len(response.headers["x-request-id"]) >= 16
    echoed = await api.client.get("/health", headers={"X-Request-ID": "client-supplied-id-123"})
    assert echoed.headers["x-request-id"] == "client-supplied-id-123"
    injected = await api.client.get("/health", headers={"X-Request-ID": "bad id\r\nwith: header"})
    assert injected.headers["x-request-id"] != "bad id\r\nwith: header"


async def test_cors_allows_only_configured_origins(settings_factory, api_factory) -> None:
    async with api_factory(settings_factory(allowed_origins="https://app.example.com")) as api:
        allowed = await api.client.options(
            "/search", headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
        )
        denied = await api.client.options(
            "/search", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
        )
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers


async def test_open_embedder_breaker_is_reported_degraded_with_its_reason(settings_factory, api_factory) -> None:
    """The embedder answers its ping again, but its breaker is still open: searches fail fast, so /health says so."""
    from app.services.embedder_client import EmbedderUnavailable

    settings = settings_factory(breaker_failure_threshold=2, breaker_reset_timeout_s=60)
    async with api_factory(settings) as api:
        assert (await api.client.get("/health")).json()["dependencies"]["embedder"]["status"] == "ok"

        async def refused() -> None:
            raise EmbedderUnavailable("embedder /embed/queries: ConnectError")

        for _ in range(2):
            with contextlib.suppress(Exception):
                await api.services.resilience.call("embedder", refused, timeout_s=1)
        response = await api.client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["embedder"] == {"status": "down", "required": True, "detail": "circuit open"}
    assert body["dependencies"]["redis"]["status"] == "ok"
    assert "ConnectError" not in response.text and settings.embedder_url not in response.text
