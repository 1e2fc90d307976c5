"""Keys: the customer-managed KMS keys every other component encrypts with, one per purpose.

One key per purpose (not one key for everything) so a key policy, a grant or a disabled key affects one kind of
data only, and CloudTrail shows which data a decrypt touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.naming import check_name_prefix, check_region
from infra.policy_document import Statement, policy_document

# AWS's floor is 7 days; 30 (the maximum) gives the longest window to notice and cancel a mistaken deletion
# before every object encrypted under the key becomes unreadable.
DELETION_WINDOW_DAYS = 30
# Yearly automatic rotation of the key material (AWS keeps old material, so existing ciphertext stays readable).
ROTATION_PERIOD_DAYS = 365

# No "ecr": the shared registry has its own key (infra/registry.py), whose lifetime is the registry's, not a tier's.
PURPOSES: tuple[str, ...] = ("s3", "eks", "ebs", "logs", "secrets")

_DESCRIPTIONS = {
    "s3": "S3 data (pages, snapshots, audit, models buckets) and their replication",
    "eks": "EKS Kubernetes secrets envelope encryption",
    "ebs": "EBS volumes of the EKS node groups and persistent volumes",
    "logs": "CloudWatch Logs log groups (VPC flow logs, EKS control plane, application logs)",
    "secrets": "Secrets Manager secrets",
}

# Every data-plane action a service needs to use a key for envelope encryption (no administrative actions).
USE_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def account_root_arn(account_id: pulumi.Input[str], partition: pulumi.Input[str]) -> pulumi.Output[str]:
    """An account as a policy principal: always valid, unlike a role ARN, which must exist when the policy is set."""
    return pulumi.Output.concat("arn:", partition, ":iam::", account_id, ":root")


def root_admin_statement(account_id: pulumi.Input[str], partition: pulumi.Input[str]) -> Statement:
    # The account root keeps full control of every key: it is what lets IAM policies grant use of the key, and
    # without it a key whose only admin role was deleted is unrecoverable (and so is the EKS cluster it guards).
    return {
        "sid": "AccountRootIsKeyAdmin",
        "effect": "Allow",
        "principals": [{"type": "AWS", "identifiers": [account_root_arn(account_id, partition)]}],
        "actions": ["kms:*"],
        "resources": ["*"],
    }


def key_policy(
    purpose: str,
    *,
    account_id: pulumi.Input[str],
    partition: pulumi.Input[str],
    region: str,
    opts: pulumi.InvokeOutputOptions,
    autoscaling_role_arn: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """The key policy for `purpose`: root admin, plus the service principals that purpose needs.

    `autoscaling_role_arn` (required for "ebs"): the ARN of the Auto Scaling service-linked role as an Output of
    the resource that creates it (or of the lookup that proves it exists), never a hand-built string: KMS refuses a
    policy naming a role that does not exist yet, and the Output makes the key wait for the role.
    """
    statements: list[Statement] = [root_admin_statement(account_id, partition)]
    if purpose == "logs":
        # CloudWatch Logs encrypts with the key itself (not with the caller's credentials), so it needs a key
        # policy grant. The encryption-context condition limits it to log groups of this account and region.
        statements.append(
            {
                "sid": "CloudWatchLogsUse",
                "effect": "Allow",
                "principals": [{"type": "Service", "identifiers": [f"logs.{region}.amazonaws.com"]}],
                "actions": USE_ACTIONS,
                "resources": ["*"],
                "conditions": [
                    {
                        "test": "ArnLike",
                        "variable": "kms:EncryptionContext:aws:logs:arn",
                        "values": [
                            pulumi.Output.concat("arn:", partition, ":logs:", region, ":", account_id, ":log-group:*")
                        ],
                    }
                ],
            }
        )
    if purpose == "ebs":
        # Managed node groups launch instances through EC2 Auto Scaling; its service-linked role must be able to
        # use the key for the encrypted root volumes, or instances fail to launch (Client.InternalError).
        if autoscaling_role_arn is None:
            raise ValueError(
                "autoscaling_role_arn: required for the ebs key (the ARN of infra.service_linked_roles' "
                "AWSServiceRoleForAutoScaling, which must exist before KMS accepts a policy naming it)"
            )
        asg_role = autoscaling_role_arn
        statements.append(
            {
                "sid": "AutoScalingServiceRoleUse",
                "effect": "Allow",
                "principals": [{"type": "AWS", "identifiers": [asg_role]}],
                "actions": USE_ACTIONS,
                "resources": ["*"],
            }
        )
        statements.append(
            {
                "sid": "AutoScalingServiceRoleGrantsForAwsResources",
                "effect": "Allow",
                "principals": [{"type": "AWS", "identifiers": [asg_role]}],
                "actions": ["kms:CreateGrant"],
                "resources": ["*"],
                "conditions": [{"test": "Bool", "variable": "kms:GrantIsForAWSResource", "values": ["true"]}],
            }
        )
    return policy_document(statements, opts=opts)


def customer_managed_key(
    name: str,
    *,
    alias: str,
    description: str,
    policy: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    region: str | None = None,
) -> tuple[aws.kms.Key, aws.kms.Alias]:
    """A symmetric CMK with the project's fixed guarantees, and its alias. Shared with Storage's replica key."""
    key = aws.kms.Key(
        name,
        description=description,
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        enable_key_rotation=True,
        rotation_period_in_days=ROTATION_PERIOD_DAYS,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        # Never skip the lockout safety check: it is what refuses a policy that would leave nobody able to
        # administer the key.
        bypass_policy_lockout_safety_check=False,
        policy=policy,
        tags={**tags, "Name": alias.removeprefix("alias/")},
        region=region,
        opts=opts,
    )
    key_alias = aws.kms.Alias(
        f"{name}-alias",
        name=alias,
        target_key_id=key.key_id,
        region=region,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[key])),
    )
    return key, key_alias


@dataclass(frozen=True, kw_only=True)
class KeysArgs:
    # "<prefix>-<tier>", e.g. "visionrag-prod": aliases are "alias/<name_prefix>-<purpose>".
    name_prefix: str
    region: str
    # ServiceLinkedRoles.arns[AUTOSCALING]: the EBS key policy names this role (see key_policy).
    autoscaling_role_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class Keys(pulumi.ComponentResource):
    s3: aws.kms.Key
    eks: aws.kms.Key
    ebs: aws.kms.Key
    logs: aws.kms.Key
    secrets: aws.kms.Key
    aliases: dict[str, aws.kms.Alias]
    arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_name_prefix("name_prefix", args.name_prefix)
        check_region("region", args.region)
        super().__init__("visionrag:infra:Keys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        partition = aws.get_partition_output(opts=invoke_opts).partition

        keys: dict[str, aws.kms.Key] = {}
        self.aliases = {}
        for purpose in PURPOSES:
            policy = key_policy(
                purpose,
                account_id=identity.account_id,
                partition=partition,
                region=args.region,
                opts=invoke_opts,
                autoscaling_role_arn=args.autoscaling_role_arn if purpose == "ebs" else None,
            )
            keys[purpose], self.aliases[purpose] = customer_managed_key(
                f"{name}-{purpose}",
                alias=f"alias/{args.name_prefix}-{purpose}",
                description=f"{args.name_prefix}: {_DESCRIPTIONS[purpose]}",
                policy=policy,
                tags={**args.tags, "purpose": purpose},
                opts=child,
            )
        self.s3, self.eks, self.ebs = keys["s3"], keys["eks"], keys["ebs"]
        self.logs, self.secrets = keys["logs"], keys["secrets"]
        self.arns = {purpose: key.arn for purpose, key in keys.items()}
        self.register_outputs({f"{purpose}_key_arn": arn for purpose, arn in self.arns.items()})
