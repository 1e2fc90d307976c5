"""The API under gunicorn (gunicorn.conf.py + uvicorn workers), the production serving path, for tests that need
real sockets: started from a settings object, healthy before it is handed out, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(settings: Any) -> dict[str, str]:
    """The process environment that makes the API load exactly `settings` (no stray PROMETHEUS_/VISIONRAG_ vars)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "VISIONRAG_"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    return env


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    exit_code: int | None = None


@contextmanager
def serve(settings: Any, multiproc_dir: Path, **extra_env: str) -> Iterator[Served]:
    """gunicorn with two workers on a free loopback port; `served.exit_code` holds its exit status afterwards."""
    port = free_port()
    env: Mapping[str, str] = {
        **env_for(settings),
        "METRICS_ENABLED": "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        **extra_env,
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "--config", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(base=f"http://127.0.0.1:{port}", process=proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{served.base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
            assert time.monotonic() < deadline, "gunicorn did not become healthy"
            time.sleep(0.3)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            served.exit_code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
