"""The alerts topic: an SNS topic, encrypted with its own key, that CloudWatch alarms and AWS Budgets publish to.

CloudWatch and Budgets publish to an encrypted topic only when the key policy lets those services use the key,
which an AWS-managed SNS key never does; both are pinned to this account (aws:SourceAccount). Publishing without
TLS is denied. A CloudWatch alarm notifies a topic in its own region only: PutMetricAlarm refuses another region's
topic ("ValidationError: Invalid region ca-central-1 specified. Only us-west-2 is supported.",
https://github.com/cds-snc/notification-terraform/pull/128), so a stack with resources in a second region (the
replica buckets) builds a second topic there with the same function (infra/observability.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import resolved
from infra.keys import customer_managed_key

PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


@dataclass(frozen=True)
class AlertTopic:
    key: aws.kms.Key
    topic: aws.sns.Topic


def alert_topic(
    name: str,
    *,
    name_prefix: str,
    account: pulumi.Input[str],
    emails: Sequence[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
    region: str | None = None,
) -> AlertTopic:
    """Key, topic, topic policy and e-mail subscriptions named `{name}-alerts*`; `region` None: the stack's."""
    child = pulumi.ResourceOptions(parent=parent)
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    account_id = pulumi.Output.from_input(account)
    partition = aws.get_partition_output(opts=invoke).partition
    where = f" in {region}" if region else ""

    def service_principals() -> list[aws.iam.GetPolicyDocumentStatementPrincipalArgs]:
        return [aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="Service", identifiers=list(PUBLISHERS))]

    def same_account() -> list[aws.iam.GetPolicyDocumentStatementConditionArgs]:
        return [
            aws.iam.GetPolicyDocumentStatementConditionArgs(
                test="StringEquals", variable="aws:SourceAccount", values=[resolved(account_id)]
            )
        ]

    key_policy = aws.iam.get_policy_document_output(
        statements=[
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="AccountRootIsKeyAdmin",
                effect="Allow",
                principals=[
                    aws.iam.GetPolicyDocumentStatementPrincipalArgs(
                        type="AWS",
                        identifiers=[resolved(pulumi.Output.concat("arn:", partition, ":iam::", account_id, ":root"))],
                    )
                ],
                actions=["kms:*"],
                resources=["*"],
            ),
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="AlertPublishersUseKey",
                effect="Allow",
                principals=service_principals(),
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions=same_account(),
            ),
        ],
        opts=invoke,
    ).json
    # Same guarantees as every project key (infra/keys.py): rotation, 30-day window, lockout check.
    key, _alias = customer_managed_key(
        f"{name}-alerts-key",
        alias=f"alias/{name_prefix}-alerts",
        description=f"{name_prefix} alerts topic{where} (CloudWatch alarms, Budgets)",
        policy=key_policy,
        tags=tags,
        region=region,
        opts=child,
    )
    topic = aws.sns.Topic(
        f"{name}-alerts",
        name=f"{name_prefix}-alerts",
        kms_master_key_id=key.arn,
        tags=tags,
        region=region,
        opts=child,
    )
    topic_policy = aws.iam.get_policy_document_output(
        statements=[
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="AlertPublishers",
                effect="Allow",
                principals=service_principals(),
                actions=["sns:Publish"],
                resources=[resolved(topic.arn)],
                conditions=same_account(),
            ),
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals=[aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="*", identifiers=["*"])],
                actions=["sns:Publish"],
                resources=[resolved(topic.arn)],
                conditions=[
                    aws.iam.GetPolicyDocumentStatementConditionArgs(
                        test="Bool", variable="aws:SecureTransport", values=["false"]
                    )
                ],
            ),
        ],
        opts=invoke,
    ).json
    aws.sns.TopicPolicy(f"{name}-alerts-policy", arn=topic.arn, policy=topic_policy, region=region, opts=child)
    for i, email in enumerate(emails):
        aws.sns.TopicSubscription(
            f"{name}-alerts-email-{i}", topic=topic.arn, protocol="email", endpoint=email, region=region, opts=child
        )
    return AlertTopic(key=key, topic=topic)
