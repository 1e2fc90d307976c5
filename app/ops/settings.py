"""Settings of the ops commands: the worker's (connection fields and collection layout) plus snapshots."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from app.core.settings import load
from app.worker.settings import WorkerSettings


class OpsSettings(WorkerSettings):
    # Snapshots go through boto3, whose default chain already takes the pod's web identity (IRSA) when
    # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset: no S3 keys are required here.
    uses_page_storage: ClassVar[bool] = False

    # Every Qdrant node's URL (the StatefulSet's per-pod DNS names): a snapshot is per node and per shard.
    qdrant_node_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    s3_bucket_snapshots: str = "visionrag-snapshots"
    # boto3 endpoint for the snapshots bucket; empty means AWS itself.
    s3_snapshots_endpoint_url: str | None = None
    snapshot_prefix: str = "qdrant/"
    snapshot_sse: Literal["none", "s3", "kms"] = "kms"
    snapshot_kms_key_id: str | None = None
    snapshot_keep_last: int = Field(default=14, ge=1)
    snapshot_max_age_days: int = Field(default=30, ge=1)
    snapshot_part_size_mb: int = Field(default=64, ge=5, le=5120)
    snapshot_presign_ttl_s: int = Field(default=3600, ge=60, le=43200)
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    @field_validator("qdrant_node_urls", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().rstrip("/") for v in value.split(",") if v.strip()]
        return value

    @property
    def nodes(self) -> list[str]:
        return self.qdrant_node_urls or [self.qdrant_url.rstrip("/")]


@lru_cache(maxsize=1)
def get_ops_settings() -> OpsSettings:
    return load(OpsSettings)
