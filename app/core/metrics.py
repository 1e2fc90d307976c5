"""Prometheus counters for the API's own work (HTTP latency/status come from prometheus-fastapi-instrumentator).

Metrics are served on their own port (METRICS_PORT, 9090), never on the public API port. Under gunicorn the
workers write to PROMETHEUS_MULTIPROC_DIR and the master serves the aggregate (see gunicorn.conf.py).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client import multiprocess as prom_multiprocess

SEARCH_REQUESTS = Counter("visionrag_search_requests_total", "Search requests by outcome", ["outcome"])
CHAT_REQUESTS = Counter("visionrag_chat_requests_total", "Chat requests by outcome", ["outcome"])
CHAT_TOKENS = Counter("visionrag_chat_tokens_total", "LLM tokens spent", ["kind"])
INDEX_UPLOADS = Counter("visionrag_index_uploads_total", "Uploaded files by outcome", ["outcome"])
INDEX_JOBS = Counter("visionrag_index_jobs_enqueued_total", "Indexing jobs enqueued")
CACHE_LOOKUPS = Counter("visionrag_cache_lookups_total", "Response cache lookups", ["kind", "result"])
RATE_LIMITED = Counter("visionrag_rate_limited_total", "Requests refused with 429", ["scope"])
DEPENDENCY_ERRORS = Counter("visionrag_dependency_unavailable_total", "503s by dependency", ["dependency"])
BREAKER_TRANSITIONS = Counter(
    "visionrag_circuit_breaker_transitions_total", "Circuit breaker state changes", ["dependency", "state"]
)
AUDIT_EVENTS = Counter("visionrag_audit_events_total", "Audit events written", ["action"])
# Events that never reached the audit bucket (after the writer's retries): the action itself went ahead (a finished
# indexing job) or failed anyway (a `failed` closing event); the event is then only in the error log. Alert on > 0.
AUDIT_WRITE_FAILURES = Counter(
    "visionrag_audit_write_failures_total", "Audit events that could not be written (logged instead)", ["action"]
)
# Quota usage per tenant; `tenant` is bounded by app/api/quotas.py TenantLabels (never a subject, at most
# QUOTA_METRIC_MAX_TENANTS ids per process, the rest `_other`); kind: search, chat, llm_tokens, upload_pages/bytes.
TENANT_USAGE = Counter("visionrag_tenant_usage_total", "Quota units used per tenant", ["tenant", "kind"])


def metrics_registry() -> CollectorRegistry | None:
    """The multiprocess registry when running under gunicorn with PROMETHEUS_MULTIPROC_DIR, else None."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return None


def serve_metrics(port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104 - scraped over the pod network
    """Start the /metrics HTTP server on its own port; returns the server (call .shutdown() to stop)."""
    registry = metrics_registry()
    if registry is not None:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    else:
        server, _thread = start_http_server(port, addr=addr)
    return server
