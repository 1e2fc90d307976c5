"""S3 settings: retention, replication and the audit bucket's Object Lock mode."""

from __future__ import annotations

from pydantic import Field

from infra.bucket import ObjectLockMode
from stacks.config.base import StrictModel


class StorageConfig(StrictModel):
    # Versioning is not a knob: every bucket is versioned (it is what makes deletes and overwrites recoverable).
    replication: bool
    noncurrent_version_expiry_days: int = Field(ge=1)
    snapshot_retention_days: int = Field(ge=1)
    access_log_retention_days: int = Field(default=365, ge=1)
    audit_object_lock: ObjectLockMode  # the component's own modes (infra/bucket.py)
    audit_retention_days: int = Field(ge=1)
    pages_quota_gib: int = Field(default=500, ge=1)
