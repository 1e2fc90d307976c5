"""Prometheus metrics of the worker (served on WORKER_METRICS_PORT, 9091)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PAGES = Counter("visionrag_worker_pages_indexed_total", "Pages rendered, embedded and upserted")
JOBS = Counter("visionrag_worker_jobs_total", "Indexing jobs by outcome", ["outcome"])
RETRIES = Counter("visionrag_worker_job_retries_total", "Job attempts that failed transiently and were re-queued")
JOB_SECONDS = Histogram(
    "visionrag_worker_job_seconds", "Wall time of one job attempt", buckets=(1, 5, 15, 60, 300, 900, 3600)
)
STAGE_SECONDS = Histogram(
    "visionrag_worker_stage_seconds",
    "Time spent per batch in each pipeline stage",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
