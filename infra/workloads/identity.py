"""WorkloadIdentity: one Kubernetes ServiceAccount bound to its own IAM role through IRSA.

The trust policy pins `sub` to exactly `system:serviceaccount:<namespace>:<name>` and `aud` to sts.amazonaws.com
(infra/iam.py `irsa_trust`); the permissions are an inline policy built from the statement helpers below, each
scoped to named ARNs. KMS use is only via the service that owns the data (`kms:ViaService`), so the role cannot
decrypt arbitrary ciphertext with the key directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam import irsa_trust
from infra.workloads.labels import labels

Statement = dict[str, Any]
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"


def s3_objects(sid: str, bucket_arn: pulumi.Input[str], actions: Sequence[str], prefix: str = "*") -> list[Statement]:
    objects = pulumi.Output.concat(bucket_arn, "/", prefix)
    return [
        {"Sid": f"{sid}List", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
        {"Sid": f"{sid}Objects", "Effect": "Allow", "Action": list(actions), "Resource": [objects]},
    ]


S3_READ = ["s3:GetObject"]
S3_READ_WRITE = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def kms_via(sid: str, key_arn: pulumi.Input[str], service: str, region: str, *, encrypt: bool) -> Statement:
    actions = ["kms:Decrypt", "kms:DescribeKey"] + (["kms:GenerateDataKey", "kms:Encrypt"] if encrypt else [])
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": [key_arn],
        "Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}},
    }


def policy_json(statements: Sequence[Statement]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentityArgs:
    provider: k8s.Provider
    namespace: str
    service_account: str
    role_name: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    statements: Sequence[Statement]
    tags: dict[str, str] = field(default_factory=dict)
    # Only controllers that talk to the Kubernetes API (the add-ons) get the token.
    kubernetes_api_access: bool = False
    depends_on: tuple[pulumi.Resource, ...] = ()


class WorkloadIdentity(pulumi.ComponentResource):
    service_account: k8s.core.v1.ServiceAccount
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    name: str

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not _ROLE_NAME.match(args.role_name):
            raise ValueError(f"WorkloadIdentityArgs.role_name: {args.role_name!r} is not a valid IAM role name (<= 64)")
        if not args.statements:
            raise ValueError(f"WorkloadIdentityArgs.statements: {args.service_account!r} needs at least one statement")
        for s in args.statements:
            actions = s.get("Action", [])
            if s.get("Effect") != "Allow" or any(a == "*" or a.endswith(":*") for a in actions):
                raise ValueError(f"WorkloadIdentityArgs.statements: {s.get('Sid')!r} grants a wildcard action")
        super().__init__("visionrag:workloads:WorkloadIdentity", name, None, opts)
        aws_child = pulumi.ResourceOptions(parent=self)
        self.name = args.service_account
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description=f"IRSA role of {args.namespace}/{args.service_account}",
            assume_role_policy=irsa_trust(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=args.namespace,
                service_account=args.service_account,
                opts=pulumi.InvokeOutputOptions(parent=self),
            ),
            max_session_duration=3600,
            tags=args.tags,
            opts=aws_child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            name=f"{args.service_account}-scoped",
            policy=policy_json(args.statements),
            opts=aws_child,
        )
        self.role_arn = self.role.arn
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.service_account,
                namespace=args.namespace,
                labels=labels(args.service_account),
                annotations={ROLE_ARN_ANNOTATION: self.role.arn},
            ),
            automount_service_account_token=args.kubernetes_api_access,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"role_arn": self.role_arn, "service_account": args.service_account})
