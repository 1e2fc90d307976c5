"""JSON logs carry the request id and never credentials or prompts; Sentry events are scrubbed; metrics port."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request

from app.core.logging import configure_logging, fingerprint, get_logger, request_id_var
from app.core.metrics import SEARCH_REQUESTS, serve_metrics
from app.core.telemetry import scrub_event


def _lines(capsys) -> list[dict]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_json_lines_with_request_id_and_redaction(capsys) -> None:
    configure_logging("INFO", json=True)
    token = request_id_var.set("req-1234567890")
    try:
        get_logger("t").info(
            "calling",
            authorization="Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            headers={"Authorization": "Bearer abc.def.ghi", "X-Trace": "ok"},
            api_key="sk-live-1234567890",
            prompt="what is my salary?",
            note="token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl in text",
            prompt_sha256=fingerprint("what is my salary?"),
        )
        logging.getLogger("uvicorn.error").warning("library says Bearer abcdefghijklmnop")
    finally:
        request_id_var.reset(token)
    lines = _lines(capsys)
    ours, library = lines[-2], lines[-1]
    assert ours["event"] == "calling" and ours["request_id"] == "req-1234567890" and ours["level"] == "info"
    assert ours["authorization"] == "[redacted]" and ours["api_key"] == "[redacted]"
    assert ours["prompt"] == "[redacted]" and ours["headers"]["Authorization"] == "[redacted]"
    assert ours["headers"]["X-Trace"] == "ok"
    assert "eyJ" not in ours["note"]
    assert ours["prompt_sha256"] == fingerprint("what is my salary?")
    assert library["request_id"] == "req-1234567890" and "abcdefghijklmnop" not in library["event"]
    raw = json.dumps(lines)
    assert "salary" not in raw and "sk-live" not in raw


def test_sentry_events_are_scrubbed() -> None:
    event = {
        "request": {
            "headers": {"Authorization": "Bearer x", "Cookie": "s=1", "Accept": "json"},
            "data": {"message": "secret question"},
            "query_string": "q=private",
        },
        "user": {"ip_address": "1.2.3.4"},
        "extra": {"api_key": "sk-123456789", "count": 3},
    }
    scrubbed = scrub_event(event)
    assert scrubbed["request"]["headers"] == {"Authorization": "[redacted]", "Cookie": "[redacted]", "Accept": "json"}
    assert scrubbed["request"]["data"] == "[redacted]" and scrubbed["request"]["query_string"] == "[redacted]"
    assert "user" not in scrubbed and scrubbed["extra"] == {"api_key": "[redacted]", "count": 3}


def test_metrics_are_served_on_their_own_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    SEARCH_REQUESTS.labels(outcome="ok").inc()
    server = serve_metrics(port, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'visionrag_search_requests_total{outcome="ok"}' in text
