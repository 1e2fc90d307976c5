"""The physical names of the stack's S3 buckets: globally unique, deterministic, and checkable before deploy.

S3 bucket names share one namespace across every AWS account, so `visionrag-dev-pages` can already belong to
somebody else (CreateBucket: BucketAlreadyExists) and a second stack of the same tier in another account or region
would collide with ours. Every name therefore carries the owning account id and the bucket's region:

    <prefix>-<tier>-<account id>-<region>-<purpose>            e.g. visionrag-dev-123456789012-us-east-1-pages
    <prefix>-<tier>-<account id>-<replica region>-<purpose>-replica

The purpose stays last (policies and operators recognise a bucket's role by its `-<purpose>` suffix) and the
account id is always 12 digits, so the longest name is known from config alone: stacks/config refuses a prefix or
region that would exceed S3's 63 characters before anything is registered. Pure Python (no pulumi import), so
config validation can use it.
"""

from __future__ import annotations

from infra.naming import S3_BUCKET_NAME_MAX

BUCKETS: tuple[str, ...] = ("pages", "snapshots", "audit", "models", "access-logs")
REPLICATED: tuple[str, ...] = ("pages", "snapshots")
ACCESS_LOGS = "access-logs"
REPLICA_SUFFIX = "replica"
ACCOUNT_ID_LENGTH = 12  # AWS account ids are always 12 digits
# Stands in for the account id where only the length matters (config-time checks).
ACCOUNT_ID_PLACEHOLDER = "0" * ACCOUNT_ID_LENGTH


def bucket_name(name_prefix: str, account_id: str, region: str, purpose: str) -> str:
    return f"{name_prefix}-{account_id}-{region}-{purpose}"


def bucket_names(name_prefix: str, account_id: str, region: str, replica_region: str | None) -> dict[str, str]:
    """Every bucket's physical name by key: the five purposes, plus `<purpose>-replica` when replicating."""
    names = {purpose: bucket_name(name_prefix, account_id, region, purpose) for purpose in BUCKETS}
    if replica_region is not None:
        for purpose in (*REPLICATED, ACCESS_LOGS):
            key = f"{purpose}-{REPLICA_SUFFIX}"
            names[key] = bucket_name(name_prefix, account_id, replica_region, key)
    return names


def too_long(name_prefix: str, region: str, replica_region: str | None) -> list[str]:
    """The bucket names (with a 12-digit account id) that exceed S3's limit; empty when all fit."""
    names = bucket_names(name_prefix, ACCOUNT_ID_PLACEHOLDER, region, replica_region)
    return sorted(n for n in names.values() if len(n) > S3_BUCKET_NAME_MAX)
