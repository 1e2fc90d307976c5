"""KMS keys and the CloudWatch log groups they protect."""

from __future__ import annotations

import re

from pulumi_policy import Policy, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    knob,
    number,
    of_type,
    peek,
    policy_document,
    present,
    resource_policy,
    stack_policy,
    statements,
    truthy,
)

KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SERVICE_LINKED_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
# arn:<partition>:iam::<account>:role/aws-service-role/<service principal>/<role name>
_SERVICE_LINKED_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/aws-service-role/(?P<service>[^/]+)/[^/]+$")


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


def _aws_principals(statement: dict[str, object]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return []
    return [p for p in as_list(principal.get("AWS")) if isinstance(p, str)]


def _service_linked_roles_exist(args: StackValidationArgs, report: Report) -> None:
    """A key policy may name a service-linked role only if the stack creates it first or it is declared present.

    KMS refuses a key policy whose principal does not exist (MalformedPolicyDocumentException), and a fresh
    account lacks most service-linked roles until the service's first use.
    """
    preexisting = set(knob(args, "preexistingServiceLinkedRoles", []))
    roles = of_type(args.resources, SERVICE_LINKED_ROLE)
    for key in of_type(args.resources, KMS_KEY):
        # A policy that is unknown in preview (it names a role created in this update) is judged at `up`.
        doc = policy_document(peek(key.props, "policy"))
        named = {arn for statement in statements(doc) for arn in _aws_principals(statement)}
        for arn in sorted(named):
            match = _SERVICE_LINKED_ROLE_ARN.match(arn)
            if match is None or match["service"] in preexisting:
                continue
            service = match["service"]
            created = {r.urn for r in roles if peek(r.props, "awsServiceName") == service}
            if not created:
                report(
                    f"key {key.name} names the service-linked role {arn}, which this stack does not create "
                    f"and the pack config does not declare present (preexistingServiceLinkedRoles): KMS "
                    "refuses a key policy naming a role that does not exist",
                    key.urn,
                )
            elif not created & {d.urn for d in key.dependencies}:
                report(
                    f"key {key.name} names the service-linked role of {service} but does not depend on the "
                    "aws.iam.ServiceLinkedRole that creates it: KMS may see the policy before the role exists",
                    key.urn,
                )


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
    stack_policy(
        name="kms-service-linked-roles-exist",
        description="A KMS key policy names only service-linked roles the stack creates first, or declared present.",
        severity=Severity.HIGH,
        remediation="Create the role with infra.service_linked_roles (visionrag:cluster.createServiceLinkedRoles) and "
        "build the key policy from its arn Output; for an account that already has it, set createServiceLinkedRoles "
        "false and list the service principal in this policy's preexistingServiceLinkedRoles.",
        validate=_service_linked_roles_exist,
        schema=config_schema(
            {
                "preexistingServiceLinkedRoles": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": [],
                    "description": "Service principals (e.g. autoscaling.amazonaws.com) whose service-linked role "
                    "the account already has (cluster.createServiceLinkedRoles false).",
                }
            }
        ),
        tags=["kms", "iam"],
    ),
]
