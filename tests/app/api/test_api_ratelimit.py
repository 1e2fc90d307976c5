"""Rate limits in real Redis: per identity, per IP (X-Forwarded-For only from trusted hops), 429 + Retry-After."""

from __future__ import annotations

import uuid

import pytest

from app.api.ratelimit import client_ip, parse_networks


async def test_search_limit_per_identity_is_429_with_retry_after(settings_factory, api_factory, auth, seed) -> None:
    async with api_factory(settings_factory(rate_limit_search="3/minute")) as api:
        await seed(api.services, uuid.uuid4().hex, ["page"])
        codes = [
            (await api.client.get("/search", params={"q": "page"}, headers=auth("gina"))).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        limited = await api.client.get("/search", params={"q": "page"}, headers=auth("gina"))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["detail"] == "rate limit exceeded (search)"
        # Limits are per route class: chat and uploads are counted separately.
        assert (await api.client.post("/chat", json={"message": "hi"}, headers=auth("gina"))).status_code == 200


async def test_per_ip_limit_counts_every_identity_behind_one_address(settings_factory, api_factory, auth) -> None:
    async with api_factory(settings_factory(rate_limit_per_minute=4)) as api:
        codes = [
            (await api.client.get("/search", params={"q": "x"}, headers=auth(f"user-{i}"))).status_code
            for i in range(5)
        ]
    assert codes[:4] == [200] * 4 and codes[4] == 429


async def test_general_ip_limit_applies_before_authentication(settings_factory, api_factory) -> None:
    async with api_factory(settings_factory(rate_limit_per_minute=3)) as api:
        codes = [
            (await api.client.get("/jobs/x", headers={"Authorization": "Bearer junk"})).status_code for _ in range(4)
        ]
    assert codes == [401, 401, 401, 429]


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(settings_factory, api_factory, auth) -> None:
    async with api_factory(settings_factory(rate_limit_per_minute=2)) as api:
        codes = [
            (await api.client.get("/jobs/x", headers={**auth(), "X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(3)
        ]
    assert codes == [404, 404, 429]


async def test_forwarded_for_from_a_trusted_proxy_identifies_clients(settings_factory, api_factory, auth) -> None:
    settings = settings_factory(rate_limit_per_minute=2, trusted_proxies="203.0.113.0/24")
    async with api_factory(settings) as api:  # the test client's peer is 203.0.113.7
        first = [
            (await api.client.get("/jobs/x", headers={**auth(), "X-Forwarded-For": "198.51.100.1"})).status_code
            for _ in range(3)
        ]
        other = await api.client.get("/jobs/x", headers={**auth(), "X-Forwarded-For": "198.51.100.2"})
    assert first == [404, 404, 429]
    assert other.status_code == 404


async def test_redis_down_fails_closed_with_503(settings_factory, api_factory, auth, closed_port) -> None:
    settings = settings_factory(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    async with api_factory(settings) as api:
        response = await api.client.get("/search", params={"q": "x"}, headers=auth())
    assert response.status_code == 503
    assert response.json()["detail"].startswith("redis unavailable")


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("10.0.0.5", "1.2.3.4", [], "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),  # client-prepended hop is ignored
        ("10.0.0.5", "1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),  # two trusted hops
        ("10.0.0.5", "junk, 10.0.0.9", ["10.0.0.0/8"], "10.0.0.5"),
        ("10.0.0.5", "10.0.0.7", ["10.0.0.0/8"], "10.0.0.7"),
        ("192.0.2.1", "1.2.3.4", ["10.0.0.0/8"], "192.0.2.1"),
        (None, None, [], "unknown"),
    ],
)
def test_client_ip(peer, xff, trusted, expected) -> None:
    assert client_ip(peer, xff, parse_networks(trusted)) == expected
