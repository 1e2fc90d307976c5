"""Worker settings: the shared connection fields (app/core/settings.py, same environment names as the API, one
ConfigMap feeds both) plus the collection layout and the `WORKER_*` knobs. Kept apart from the API's settings so
the worker needs none of the API's auth config."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from app.core.settings import CollectionSettings, load

MAX_TRIES_CEILING = 40


class WorkerSettings(CollectionSettings):
    """Connection fields and the collection layout come from CollectionSettings (app/core/settings.py)."""

    # The worker waits longer than the API's request path: whole PDFs' pages, batches of page images.
    s3_timeout_s: float = Field(default=10.0, gt=0)
    qdrant_timeout_s: float = Field(default=30.0, gt=0)
    embedder_timeout_s: float = Field(default=120.0, gt=0)

    embedder_transport: Literal["binary", "json"] = "binary"
    otel_service_name: str = "visionrag-worker"

    worker_render_dpi: int = Field(default=144, ge=36, le=600)
    # Pages larger than this (in pixels, per side) are rendered at a lower scale: a poster-sized page at the
    # configured DPI would otherwise allocate hundreds of MB before the embedder downsizes it anyway.
    worker_max_side_px: int = Field(default=3000, ge=256, le=20000)
    worker_jpeg_quality: int = Field(default=85, ge=30, le=100)
    worker_embed_batch: int = Field(default=4, ge=1, le=64)
    worker_pipeline_depth: int = Field(default=2, ge=1, le=16)
    worker_max_pages: int = Field(default=500, ge=1)
    worker_max_jobs: int = Field(default=2, ge=1, le=64)
    worker_job_timeout_s: int = Field(default=3600, ge=10)
    # The floor of job attempts; `max_tries` raises it until the backoff covers an embedder cold start.
    worker_max_tries: int = Field(default=5, ge=1, le=MAX_TRIES_CEILING)
    worker_retry_base_s: float = Field(default=2.0, ge=0)
    worker_retry_max_s: float = Field(default=120.0, ge=0)
    # How long a restarted embedder takes to answer again (image pull + model load). The deployed value comes from
    # the pod env, set from the embedder's startup-probe budget (infra/workloads/embedder.py STARTUP_BUDGET_S).
    worker_embedder_cold_start_s: float = Field(default=120.0, ge=0, le=3600)
    # The worker's embedder breaker: fail fast while it is open (the job retries with backoff), shown by health.
    worker_breaker_failure_threshold: int = Field(default=5, ge=1)
    worker_breaker_reset_timeout_s: float = Field(default=30.0, gt=0)
    # Redis: each command retries with backoff for ~19 s (12 retries, app/services/factory.py), which rides out
    # a restart; the job's must-land writes (start, finish, retry, dead letter) then wait up to
    # `worker_redis_outage_s` for Redis to come back before the attempt gives up.
    redis_timeout_s: float = Field(default=5.0, gt=0)
    worker_redis_retries: int = Field(default=12, ge=0, le=100)
    worker_redis_outage_s: float = Field(default=900.0, ge=1)
    # A job's audit event (app/worker/job_audit.py) is written after the job ended; an audit bucket that is
    # unreachable is retried with the same backoff for this long, holding the job's slot, then counted and logged.
    worker_audit_outage_s: float = Field(default=120.0, ge=0)
    # arq's in-progress key is a lease renewed while the job runs: a worker that dies mid-job (OOM, evicted,
    # liveness-killed) blocks its job for at most this long instead of job_timeout + 10 s.
    worker_lease_s: int = Field(default=120, ge=10, le=3600)
    worker_call_attempts: int = Field(default=3, ge=1, le=10)
    worker_metrics_port: int = Field(default=9091, ge=0, le=65535)
    worker_queue_name: str = "visionrag:queue:index"
    worker_job_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.retry_budget_s(self.max_tries) < self.worker_embedder_cold_start_s:
            problems.append(
                f"WORKER_RETRY_BASE_S={self.worker_retry_base_s}/WORKER_RETRY_MAX_S={self.worker_retry_max_s}: "
                f"{MAX_TRIES_CEILING} attempts back off {self.retry_budget_s(self.max_tries):.0f}s, less than "
                f"WORKER_EMBEDDER_COLD_START_S={self.worker_embedder_cold_start_s:.0f} (raise WORKER_RETRY_MAX_S)"
            )
        if not self.is_dev and self.qdrant_url == ":memory:":
            problems.append("QDRANT_URL=':memory:' loses every vector on restart (allowed: a server URL)")
        return problems

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff for job-level retries: base * 2^(attempt-1), capped."""
        return float(min(self.worker_retry_max_s, self.worker_retry_base_s * 2 ** max(0, attempt - 1)))

    def retry_budget_s(self, tries: int) -> float:
        """Total backoff between `tries` attempts (the waits after attempts 1 .. tries-1)."""
        return sum(self.retry_delay(attempt) for attempt in range(1, tries))

    @property
    def max_tries(self) -> int:
        """Job attempts: at least WORKER_MAX_TRIES, and enough that the backoff outlasts an embedder cold start, so
        a job that meets a restarting embedder waits for it instead of dead-lettering."""
        tries = self.worker_max_tries
        while self.retry_budget_s(tries) < self.worker_embedder_cold_start_s and tries < MAX_TRIES_CEILING:
            tries += 1
        return tries


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return load(WorkerSettings)
