"""schemathesis: requests generated from the OpenAPI schema, sent with a valid admin token to the app served by
uvicorn on loopback (all real local parts up), must never get a 5xx. Bounded: a few examples per operation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from app.api.main import create_app

EXAMPLES_PER_OPERATION = 6


@pytest.fixture
def served_api(settings_factory: Any) -> Iterator[tuple[str, Any]]:
    app = create_app(settings_factory(rate_limit_per_minute=100_000))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_no_5xx_for_schema_generated_requests(served_api: tuple[str, Any], issuer: Any) -> None:
    base_url, app = served_api
    schema = schemathesis.openapi.from_dict(app.openapi())
    headers = {"Authorization": f"Bearer {issuer.mint('fuzzer', ['admin'])}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 12
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=20)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        run()
    assert failures == []
    # Not vacuous: every operation was exercised and the token got requests past auth.
    assert len(statuses) >= len(operations)
    assert any(200 <= status < 300 for status in statuses)
    assert statuses.count(401) == 0
