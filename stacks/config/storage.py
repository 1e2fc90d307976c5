"""S3 settings: retention, replication and the audit bucket's Object Lock mode."""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.bucket import ObjectLockMode
from infra.bucket_alarms import MAX_OBJECTS, MAX_SIZE_GIB
from infra.bucket_names import BUCKETS
from stacks.config.base import StrictModel


class BucketLimitsConfig(StrictModel):
    """Alarm thresholds of one bucket (and its replica): daily size in STANDARD and object count (versions count)."""

    size_gib: int = Field(ge=1, le=MAX_SIZE_GIB)
    objects: int = Field(ge=1, le=MAX_OBJECTS)


class StorageConfig(StrictModel):
    # Versioning is not a knob: every bucket is versioned (it is what makes deletes and overwrites recoverable).
    replication: bool
    noncurrent_version_expiry_days: int = Field(ge=1)
    snapshot_retention_days: int = Field(ge=1)
    access_log_retention_days: int = Field(default=365, ge=1)
    audit_object_lock: ObjectLockMode  # the component's own modes (infra/bucket.py)
    audit_retention_days: int = Field(ge=1)
    # Every bucket's size and object-count alarms (infra/bucket_alarms.py), by purpose; tier defaults in tiers.py.
    bucket_limits: dict[str, BucketLimitsConfig]

    @field_validator("bucket_limits")
    @classmethod
    def _every_bucket(cls, v: dict[str, BucketLimitsConfig]) -> dict[str, BucketLimitsConfig]:
        unknown = sorted(set(v) - set(BUCKETS))
        missing = sorted(set(BUCKETS) - set(v))
        if unknown or missing:
            raise ValueError(
                f"unknown buckets {unknown} / missing buckets {missing}; allowed keys (all required): "
                f"{', '.join(BUCKETS)}"
            )
        return v
