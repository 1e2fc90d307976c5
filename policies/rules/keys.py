"""KMS keys and the CloudWatch log groups they protect."""

from __future__ import annotations

from pulumi_policy import Policy, ResourceValidationArgs, Severity

from policies.rules._base import Report, config_schema, get, knob, number, present, resource_policy, truthy

KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _symmetric(args: ResourceValidationArgs) -> bool:
    spec = get(args.props, "customerMasterKeySpec")
    usage = get(args.props, "keyUsage")
    return spec in (None, "SYMMETRIC_DEFAULT") and usage in (None, "ENCRYPT_DECRYPT")


def _rotation(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != KMS_KEY:
        return
    if not _symmetric(args):
        args.not_applicable("AWS rotates only symmetric encryption keys")
    if not truthy(get(args.props, "enableKeyRotation")):
        report("enableKeyRotation is not true")


def _no_lockout_bypass(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == KMS_KEY and truthy(get(args.props, "bypassPolicyLockoutSafetyCheck")):
        report("bypassPolicyLockoutSafetyCheck is true: a key policy that locks out the account cannot be undone")


def _deletion_window(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != KMS_KEY:
        return
    minimum = knob(args, "minDeletionWindowDays", 7)
    days = number(get(args.props, "deletionWindowInDays"))
    # Unset means AWS's default of 30 days.
    if days is not None and days < minimum:
        report(f"deletionWindowInDays is {days:g}; at least {minimum} days are required to undo a mistaken delete")


def _log_groups(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != LOG_GROUP:
        return
    if not present(args.props, "kmsKeyId"):
        report("kmsKeyId is not set: log groups hold request data; encrypt them with the logs key")
    retention = number(get(args.props, "retentionInDays"))
    minimum = knob(args, "minRetentionDays", 1)
    if retention is None or retention == 0:
        report("retentionInDays is not set: logs would be kept (and billed) forever")
    elif retention < minimum:
        report(f"retentionInDays is {retention:g}; this stack keeps logs at least {minimum} days")


POLICIES: list[Policy] = [
    resource_policy(
        name="kms-key-rotation",
        description="Customer-managed symmetric KMS keys rotate their key material automatically.",
        severity=Severity.HIGH,
        remediation="Set enable_key_rotation=True on aws.kms.Key.",
        validate=_rotation,
        tags=["kms", "encryption"],
    ),
    resource_policy(
        name="kms-no-lockout-bypass",
        description="No KMS key skips the policy lockout safety check.",
        severity=Severity.CRITICAL,
        remediation="Remove bypass_policy_lockout_safety_check (keep the account root as key administrator).",
        validate=_no_lockout_bypass,
        tags=["kms"],
    ),
    resource_policy(
        name="kms-deletion-window",
        description="KMS keys keep a deletion window long enough to cancel a mistaken deletion.",
        severity=Severity.MEDIUM,
        remediation="Set deletion_window_in_days to 7..30 (30 recommended).",
        validate=_deletion_window,
        schema=config_schema({"minDeletionWindowDays": {"type": "integer", "minimum": 7, "maximum": 30, "default": 7}}),
        tags=["kms"],
    ),
    resource_policy(
        name="log-group-encrypted-retained",
        description="CloudWatch log groups are encrypted with a customer-managed key and have a retention.",
        severity=Severity.MEDIUM,
        remediation="Set kms_key_id=<logs key arn> (the key policy must allow logs.<region>.amazonaws.com) and "
        "retention_in_days on aws.cloudwatch.LogGroup.",
        validate=_log_groups,
        schema=config_schema({"minRetentionDays": {"type": "integer", "minimum": 1, "default": 1}}),
        tags=["logs", "encryption"],
    ),
]
