"""The production serving path: gunicorn.conf.py + uvicorn workers, metrics aggregated on their own port by the
master, graceful exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_serves_api_and_metrics_on_separate_ports(settings_factory: Any, issuer: Any, tmp_path: Path) -> None:
    settings = settings_factory()
    api_port, metrics_port = _port(), _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "VISIONRAG_"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    env.update(
        {
            "METRICS_ENABLED": "true",
            "METRICS_PORT": str(metrics_port),
            "GUNICORN_BIND": f"127.0.0.1:{api_port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_GRACEFUL_TIMEOUT": "5",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        }
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "--config", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
            assert time.monotonic() < deadline, "gunicorn did not become healthy"
            time.sleep(0.3)
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
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
