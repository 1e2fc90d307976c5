"""Worker settings. Connection fields use the same environment names as the API's Settings (one ConfigMap
feeds both); worker knobs are `WORKER_*`. Kept separate so the worker does not need the API's auth config."""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from app.core.service_settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    """S3_AUTH, S3_STS_ENDPOINT, the S3 keys and the SETTINGS_SECRETS_DIR files come from ServiceSettings."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)
    # The ops commands that subclass these settings without touching the pages bucket turn this off.
    uses_page_storage: ClassVar[bool] = True

    environment: Literal["dev", "staging", "prod"] = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # Error tracking, same variables as the API (unset: off).
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)

    redis_url: str = "redis://127.0.0.1:6379/0"

    s3_endpoint: str = "127.0.0.1:9000"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    s3_bucket_pages: str = "visionrag-pages"
    s3_sse: Literal["none", "s3", "kms"] = "none"
    s3_kms_key_id: str | None = None
    s3_timeout_s: float = Field(default=10.0, gt=0)

    qdrant_url: str = ":memory:"
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "pages"
    qdrant_timeout_s: float = Field(default=30.0, gt=0)
    qdrant_prefer_grpc: bool = False
    qdrant_on_disk: bool = True
    qdrant_quantization: Literal["none", "scalar", "binary"] = "none"
    qdrant_replication_factor: int = Field(default=1, ge=1, le=5)
    qdrant_shard_number: int = Field(default=1, ge=1, le=64)

    embedder_url: str = "http://127.0.0.1:7000"
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

    @model_validator(mode="after")
    def _safe(self) -> WorkerSettings:
        problems = []
        if self.s3_sse == "kms" and not self.s3_kms_key_id:
            problems.append("S3_KMS_KEY_ID is required when S3_SSE='kms'")
        if self.uses_page_storage:
            problems.extend(self.s3_auth_problems(outside_dev=self.environment != "dev"))
        if self.environment != "dev":
            if self.s3_sse == "none":
                problems.append("S3_SSE='none' (allowed outside dev: 's3', 'kms')")
            if self.qdrant_url.startswith(("http://", "https://")) and self.qdrant_api_key is None:
                problems.append("QDRANT_API_KEY is unset for a remote QDRANT_URL (allowed: the cluster's API key)")
            if self.qdrant_url == ":memory:":
                problems.append("QDRANT_URL=':memory:' loses every vector on restart (allowed: a server URL)")
        if problems:
            raise ValueError(f"unsafe worker settings for environment={self.environment!r}: " + "; ".join(problems))
        return self

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff for job-level retries: base * 2^(attempt-1), capped."""
        return float(min(self.worker_retry_max_s, self.worker_retry_base_s * 2 ** max(0, attempt - 1)))


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
