"""Sentry through the real sentry_sdk pipeline (integrations, before_send, envelope), captured by an in-test
transport: no network. What leaves the process must carry no credentials, cookies, query strings, e-mail
addresses, user identity or frame locals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI, Request
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from app.core.logging import configure_logging
from app.core.telemetry import setup_sentry

DSN = "https://0123456789abcdef0123456789abcdef@o42.ingest.sentry.example/4242"
EMAIL = "alice" + "@example.com"  # built, so the source context Sentry ships does not hold it
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


class Captured(Transport):
    """A real sentry_sdk Transport that keeps the envelopes instead of sending them."""

    def __init__(self) -> None:
        super().__init__({"dsn": DSN})
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(item.payload.get_bytes()) for e in self.envelopes for item in e.items if item.type == "event"
        ]


@dataclass(frozen=True)
class _Settings:
    sentry_dsn: SecretStr | None = SecretStr(DSN)  # noqa: RUF009 - immutable
    environment: str = "staging"
    sentry_traces_sample_rate: float = 0.0


@pytest.fixture
def captured() -> Iterator[Captured]:
    transport = Captured()
    assert setup_sentry(_Settings(), service="visionrag-api", transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: a disabled client for whatever runs next


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    async def boom(request: Request) -> None:
        token = request.headers["authorization"]  # a frame local Sentry must not ship  # noqa: F841
        raise RuntimeError(f"lookup failed for {EMAIL} with Bearer {TOKEN}")

    return app


async def test_an_unhandled_error_reaches_sentry_scrubbed(captured: Captured) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get(
            "/boom?q=my+salary+question&email=alice@example.com",
            headers={"Authorization": f"Bearer {TOKEN}", "Cookie": "session=s3cr3t", "X-Request-ID": "r-1"},
        )
    assert response.status_code == 500
    sentry_sdk.flush(2)
    events = captured.events()
    assert len(events) == 1, "the error must still be reported"
    event = events[0]
    raw = json.dumps(event)
    for secret in (TOKEN, "s3cr3t", "salary", "alice@example.com", "alice%40example.com"):
        assert secret not in raw, secret
    request = event["request"]
    assert (
        request["headers"]["authorization"] == "[redacted]" or request["headers"].get("Authorization") == "[redacted]"
    )
    assert "?" not in request["url"] and request.get("query_string") in (None, "[redacted]")
    assert "user" not in event and "env" not in request
    frames = [f for v in event["exception"]["values"] for f in v["stacktrace"]["frames"]]
    assert frames and not [f for f in frames if "vars" in f]
    assert event["environment"] == "staging" and event["tags"]["service"] == "visionrag-api"
    assert "RuntimeError" in raw  # the error itself is still there, only its sensitive parts are gone


def test_no_dsn_means_off_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)  # the processes' own log set-up, writing to this test's stdout
    assert setup_sentry(_Settings(sentry_dsn=None), service="visionrag-worker") is False
    lines = [line for line in capsys.readouterr().out.splitlines() if "error_tracking" in line]
    assert len(lines) == 1 and "error_tracking_disabled" in lines[0] and "SENTRY_DSN" in lines[0]
