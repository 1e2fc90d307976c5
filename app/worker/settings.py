"""Worker settings: the shared connection fields (app/core/settings.py, same environment names as the API, one
ConfigMap feeds both) plus the collection layout and the `WORKER_*` knobs. Kept apart from the API's settings so
the worker needs none of the API's auth config."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from app.core.settings import CollectionSettings, load


class WorkerSettings(CollectionSettings):
    """Connection fields and the collection layout come from CollectionSettings (app/core/settings.py)."""

    # The worker waits longer than the API's request path: whole PDFs' pages, batches of page images.
    s3_timeout_s: float = Field(default=10.0, gt=0)
    qdrant_timeout_s: float = Field(default=30.0, gt=0)
    embedder_timeout_s: float = Field(default=120.0, gt=0)

    embedder_transport: Literal["binary", "json"] = "binary"

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
    worker_max_tries: int = Field(default=5, ge=1, le=20)
    worker_retry_base_s: float = Field(default=2.0, ge=0)
    worker_retry_max_s: float = Field(default=120.0, ge=0)
    worker_call_attempts: int = Field(default=3, ge=1, le=10)
    worker_metrics_port: int = Field(default=9091, ge=0, le=65535)
    worker_queue_name: str = "visionrag:queue:index"
    worker_job_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    def problems(self) -> list[str]:
        problems = super().problems()
        if not self.is_dev and self.qdrant_url == ":memory:":
            problems.append("QDRANT_URL=':memory:' loses every vector on restart (allowed: a server URL)")
        return problems

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff for job-level retries: base * 2^(attempt-1), capped."""
        return float(min(self.worker_retry_max_s, self.worker_retry_base_s * 2 ** max(0, attempt - 1)))


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return load(WorkerSettings)
