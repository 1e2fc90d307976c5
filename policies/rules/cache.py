"""ElastiCache: the replication group behind rate limits and the job queue encrypts and requires AUTH."""

from __future__ import annotations

from pulumi_policy import Policy, Severity

from policies.rules._base import Report, get, present, resource_policy, truthy

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def _elasticache_encryption(args, report: Report) -> None:
    if args.resource_type != REPLICATION_GROUP:
        return
    props = args.props
    if not truthy(get(props, "atRestEncryptionEnabled")):
        report("atRestEncryptionEnabled is not true")
    if not present(props, "kmsKeyId"):
        report("kmsKeyId is not set: encrypt at rest with the customer-managed key")
    if not truthy(get(props, "transitEncryptionEnabled")):
        report("transitEncryptionEnabled is not true")
    # A plain authToken is no-plaintext-secrets' finding; here only its absence matters.
    if not present(props, "authToken") and not present(props, "authTokenWo") and not present(props, "userGroupIds"):
        report("no AUTH: set authToken (secret) or userGroupIds")


POLICIES: list[Policy] = [
    resource_policy(
        name="elasticache-encryption",
        description="ElastiCache replication groups encrypt at rest with a customer key and in transit, and "
        "require AUTH with a secret token.",
        severity=Severity.HIGH,
        remediation="Set at_rest_encryption_enabled=True, kms_key_id=<key arn>, transit_encryption_enabled=True "
        "and auth_token from Secrets Manager (a pulumi secret).",
        validate=_elasticache_encryption,
        tags=["cache", "encryption"],
    ),
]
