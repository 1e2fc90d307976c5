"""IAM policy documents the platform components share: service trust, IRSA trust, key use scoped to one key.

Rendered through `aws.iam.get_policy_document` (not hand-built JSON) so the provider normalises them and the
offline engine records exactly the JSON a deployment would send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_aws as aws

# What a service needs to read and write data under a customer-managed key (no key administration).
KMS_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def resolved(value: Any) -> str:
    """An Input used inside invoke arguments: the engine resolves Outputs there before the invoke runs, but
    pulumi_aws's argument classes declare plain strings, hence this one cast."""
    return cast(str, value)


def managed_policy_arn(name: str) -> str:
    """ARN of an AWS managed policy (e.g. 'AmazonEKSClusterPolicy', 'service-role/AmazonEBSCSIDriverPolicy')."""
    return f"arn:aws:iam::aws:policy/{name}"


def service_trust(service: str, *, opts: pulumi.InvokeOutputOptions | None = None) -> pulumi.Output[str]:
    """Trust policy letting one AWS service principal (e.g. 'eks.amazonaws.com') assume the role."""
    return aws.iam.get_policy_document_output(
        statements=[
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="ServiceAssumesRole",
                effect="Allow",
                actions=["sts:AssumeRole"],
                principals=[aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="Service", identifiers=[service])],
            )
        ],
        opts=opts,
    ).json


def irsa_trust(
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    opts: pulumi.InvokeOutputOptions | None = None,
) -> pulumi.Output[str]:
    """Trust policy for IAM Roles for Service Accounts: exactly one service account of one namespace.

    `oidc_issuer` is the issuer host/path without 'https://'. Both `sub` and `aud` are pinned: without `aud` a
    token minted for another audience would be accepted, without `sub` any pod in the cluster could assume it.
    """
    issuer = pulumi.Output.from_input(oidc_issuer)
    return aws.iam.get_policy_document_output(
        statements=[
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="ServiceAccountAssumesRole",
                effect="Allow",
                actions=["sts:AssumeRoleWithWebIdentity"],
                principals=[
                    aws.iam.GetPolicyDocumentStatementPrincipalArgs(
                        type="Federated", identifiers=[resolved(oidc_provider_arn)]
                    )
                ],
                conditions=[
                    aws.iam.GetPolicyDocumentStatementConditionArgs(
                        test="StringEquals",
                        variable=resolved(issuer.apply(lambda i: f"{i}:sub")),
                        values=[f"system:serviceaccount:{namespace}:{service_account}"],
                    ),
                    aws.iam.GetPolicyDocumentStatementConditionArgs(
                        test="StringEquals",
                        variable=resolved(issuer.apply(lambda i: f"{i}:aud")),
                        values=["sts.amazonaws.com"],
                    ),
                ],
            )
        ],
        opts=opts,
    ).json


def kms_use_policy(
    key_arns: Sequence[pulumi.Input[str]],
    *,
    grants_for_aws_resources: bool = False,
    opts: pulumi.InvokeOutputOptions | None = None,
) -> pulumi.Output[str]:
    """Use of the given keys only. With `grants_for_aws_resources`, also CreateGrant/ListGrants/RevokeGrant,
    limited by `kms:GrantIsForAWSResource` so the grant can only be handed to an AWS service (EBS attaching an
    encrypted volume), never to an arbitrary principal."""
    statements = [
        aws.iam.GetPolicyDocumentStatementArgs(
            sid="UseProjectKeys", effect="Allow", actions=KMS_USE_ACTIONS, resources=[resolved(k) for k in key_arns]
        )
    ]
    if grants_for_aws_resources:
        statements.append(
            aws.iam.GetPolicyDocumentStatementArgs(
                sid="GrantsForAwsResources",
                effect="Allow",
                actions=["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                resources=[resolved(k) for k in key_arns],
                conditions=[
                    aws.iam.GetPolicyDocumentStatementConditionArgs(
                        test="Bool", variable="kms:GrantIsForAWSResource", values=["true"]
                    )
                ],
            )
        )
    return aws.iam.get_policy_document_output(statements=statements, opts=opts).json
