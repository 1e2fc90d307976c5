"""ClusterIam: the EKS control-plane role and the node role, each with the least it needs.

The control plane gets AmazonEKSClusterPolicy plus use of the one KMS key that envelope-encrypts Kubernetes
secrets. Nodes get the three AWS managed policies a node needs to join, run the VPC CNI and pull images
(pull-only, not the broader ReadOnly). Nothing else: workloads get their own IRSA roles (infra/workloads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam import kms_use_policy, managed_policy_arn, service_trust

CLUSTER_MANAGED_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_MANAGED_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
# IAM role names are at most 64 characters.
_ROLE_NAME_MAX = 64


@dataclass(frozen=True, kw_only=True)
class ClusterIamArgs:
    cluster_name: str
    eks_key_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class ClusterIam(pulumi.ComponentResource):
    cluster_role: aws.iam.Role
    node_role: aws.iam.Role
    cluster_role_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterIamArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        longest = f"{args.cluster_name}-cluster"
        if not args.cluster_name or len(longest) > _ROLE_NAME_MAX:
            raise ValueError(
                f"cluster_name: {args.cluster_name!r} makes role name {longest!r} longer than {_ROLE_NAME_MAX}"
            )
        super().__init__("visionrag:infra:ClusterIam", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        tags = dict(args.tags)

        self.cluster_role = aws.iam.Role(
            f"{name}-cluster",
            name=f"{args.cluster_name}-cluster",
            assume_role_policy=service_trust("eks.amazonaws.com", opts=invoke),
            tags=tags,
            opts=child,
        )
        for policy in CLUSTER_MANAGED_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy}",
                role=self.cluster_role.name,
                policy_arn=managed_policy_arn(policy),
                opts=child,
            )
        # Envelope encryption: the control plane wraps each Kubernetes secret's data key with this key only.
        aws.iam.RolePolicy(
            f"{name}-cluster-secrets-key",
            role=self.cluster_role.id,
            policy=kms_use_policy([args.eks_key_arn], grants_for_aws_resources=True, opts=invoke),
            opts=child,
        )

        self.node_role = aws.iam.Role(
            f"{name}-node",
            name=f"{args.cluster_name}-node",
            assume_role_policy=service_trust("ec2.amazonaws.com", opts=invoke),
            tags=tags,
            opts=child,
        )
        for policy in NODE_MANAGED_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=self.node_role.name,
                policy_arn=managed_policy_arn(policy),
                opts=child,
            )

        self.cluster_role_arn = self.cluster_role.arn
        self.node_role_arn = self.node_role.arn
        self.register_outputs({"cluster_role_arn": self.cluster_role_arn, "node_role_arn": self.node_role_arn})
