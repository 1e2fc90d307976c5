"""The production serving path: gunicorn.conf.py + uvicorn workers, metrics aggregated on their own port by the
master, graceful exit on SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.app.api.gunicorn_server import free_port, serve


def test_gunicorn_serves_api_and_metrics_on_separate_ports(settings_factory: Any, issuer: Any, tmp_path: Path) -> None:
    metrics_port = free_port()
    with serve(settings_factory(), tmp_path, METRICS_ENABLED="true", METRICS_PORT=str(metrics_port)) as served:
        base = served.base
        token = issuer.mint("gunicorn-user")
        for _ in range(4):
            response = httpx.get(f"{base}/search", params={"q": "x"}, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
        assert httpx.get(f"{base}/metrics").status_code == 404  # not served on the API port
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        searches = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("visionrag_search_requests_total{")
        )
        assert searches == 4  # summed over both workers by the master (multiprocess mode)
        assert 'handler="/search"' in metrics and "http_request_duration_seconds" in metrics
    assert served.exit_code == 0  # graceful exit on SIGTERM
