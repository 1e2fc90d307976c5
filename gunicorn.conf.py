"""gunicorn settings for the API (uvicorn workers), every knob from the environment via app Settings.

Loading Settings here makes a bad configuration fail once, in the master, with one clear message, before any
worker starts. The master also serves the aggregated Prometheus metrics of all workers on METRICS_PORT
(multiprocess mode), so workers never bind it. Graceful shutdown: on SIGTERM workers stop accepting, finish
in-flight requests for up to GUNICORN_GRACEFUL_TIMEOUT seconds, then exit (the pod's
terminationGracePeriodSeconds must be longer).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from app.api.settings import get_settings
from app.core.settings import SettingsError

try:
    _settings = get_settings()
except SettingsError as exc:
    sys.stderr.write(f"visionrag-api: {exc}\n")
    raise SystemExit(2) from None

# Multiprocess metrics need a shared dir that exists before workers import prometheus_client.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="visionrag-metrics-"))
os.makedirs(_metrics_dir, exist_ok=True)
os.environ["VISIONRAG_METRICS_SERVED_BY_MASTER"] = "1" if _settings.metrics_enabled else ""

wsgi_app = "app.api.main:create_app()"
worker_class = "uvicorn.workers.UvicornWorker"
bind = [_settings.gunicorn_bind]
workers = _settings.gunicorn_workers
threads = _settings.gunicorn_threads
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_graceful_timeout
keepalive = _settings.gunicorn_keepalive
# Recycle workers now and then (jittered so they do not all restart together) to cap slow leaks.
max_requests = _settings.gunicorn_max_requests
max_requests_jitter = max(1, _settings.gunicorn_max_requests // 10) if _settings.gunicorn_max_requests else 0
# Each worker builds its own clients after fork (connection pools must not be shared across processes).
preload_app = False
# Logs are JSON from app.core.logging; gunicorn's own access log would duplicate ours without a request id.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
# X-Forwarded-For is interpreted once, by the app (TRUSTED_PROXIES, app/api/ratelimit.py); uvicorn must not
# rewrite the peer address first, or a spoofed header from an untrusted hop could slip through.
forwarded_allow_ips = ""
proxy_allow_ips = ""
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - heartbeat files, not data


def when_ready(server: Any) -> None:
    if _settings.metrics_enabled:
        from app.core.metrics import serve_metrics

        serve_metrics(_settings.metrics_port)
        server.log.info(f"metrics on :{_settings.metrics_port} (multiprocess dir {_metrics_dir})")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
