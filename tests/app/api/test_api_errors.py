"""An unexpected error is a JSON 500 with the request id (no traceback) and reaches Sentry, scrubbed."""

from __future__ import annotations

import gzip
import json
from typing import Any


async def test_unhandled_error_is_json_500_and_a_scrubbed_sentry_event(
    settings_factory: Any, api_factory: Any, auth: Any, stub_http: Any
) -> None:
    import sentry_sdk

    envelopes: list[bytes] = []

    class SentryStub(stub_http.handler_base):  # type: ignore[name-defined,misc]
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            envelopes.append(body)
            self._json(200, {})

    server = stub_http.start(SentryStub, None)
    try:
        settings = settings_factory(sentry_dsn=f"http://publickey@127.0.0.1:{server.port}/1")
        async with api_factory(settings) as api:

            async def broken(*args: Any, **kwargs: Any) -> None:
                raise RuntimeError("bug in the search path")

            api.services.vectors.search = broken  # type: ignore[method-assign]
            headers = auth("ivy")
            # Built at run time: Sentry ships source lines of in-app frames, and a literal would appear there.
            question = "-".join(["private", "question", "42"])
            response = await api.client.get("/search", params={"q": question}, headers=headers)
            sentry_sdk.flush(timeout=5)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)
        server.close()
    assert response.status_code == 500
    body = response.json()
    assert body == {"detail": "internal server error", "request_id": response.headers["x-request-id"]}
    assert "Traceback" not in response.text and "bug in the search path" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    raw = b"\n".join(envelopes)
    assert b"RuntimeError" in raw  # the error reached Sentry
    assert headers["Authorization"].split()[1].encode() not in raw
    assert b"private-question-42" not in raw
    events = [json.loads(line) for line in raw.splitlines() if line.startswith(b"{") and b'"level"' in line]
    assert events and all("user" not in event for event in events)
