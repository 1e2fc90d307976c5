"""EKS settings: control plane version and endpoint exposure, the system and GPU node groups."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.cluster import ROLE_ARN, SUPPORTED_VERSIONS
from infra.node_group import DISK_SIZE_GIB, GPU_FAMILIES, CapacityType, GpuAmiType, check_capacity, cpu_ami_type
from stacks.config.base import StrictModel, log_retention


class NodeGroupConfig(StrictModel):
    instance_types: list[str] = Field(min_length=1)
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int | None = None
    disk_size_gib: int = Field(default=100, ge=DISK_SIZE_GIB[0], le=DISK_SIZE_GIB[1])
    # ON_DEMAND or SPOT (infra/node_group.py owns the values). SPOT only in dev (stack.py floor), with at least two
    # interchangeable instanceTypes so an interrupted node has another Spot pool to come back from.
    capacity_type: CapacityType = "ON_DEMAND"

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupConfig:
        if self.min_size > self.max_size:
            raise ValueError(f"minSize ({self.min_size}) must be <= maxSize ({self.max_size})")
        if self.desired_size is not None and not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desiredSize ({self.desired_size}) must lie between minSize ({self.min_size}) "
                f"and maxSize ({self.max_size})"
            )
        # One node group boots one AMI (its architecture follows the instance family, infra/node_group.py):
        # refused here, before anything is registered, rather than by EKS half way through `pulumi up`.
        try:
            cpu_ami_type(self.instance_types)
        except ValueError as e:
            raise ValueError(str(e).replace("instance_types: ", "instanceTypes: ", 1)) from None
        try:
            check_capacity(self.capacity_type, self.instance_types)
        except ValueError as e:
            raise ValueError(
                str(e).replace("instance_types: ", "instanceTypes: ", 1).replace("capacity_type ", "capacityType ")
            ) from None
        return self


class GpuNodeGroupConfig(NodeGroupConfig):
    ami_type: GpuAmiType = "AL2023_x86_64_NVIDIA"

    @field_validator("instance_types")
    @classmethod
    def _gpu_only(cls, v: list[str]) -> list[str]:
        for t in v:
            if t.split(".", 1)[0] not in GPU_FAMILIES:
                raise ValueError(f"{t!r} is not a GPU instance type; allowed families: {', '.join(GPU_FAMILIES)}")
        return v


_ADDON_VERSION = r"^v\d+\.\d+\.\d+-eksbuild\.\d+$"


class AddonVersions(StrictModel):
    """Managed add-on versions, pinned: an unpinned add-on silently changes under a running cluster.

    Defaults match kubernetesVersion's default (1.33); `aws eks describe-addon-versions --kubernetes-version X`
    lists the valid ones when moving the control plane.
    """

    vpc_cni: str = Field(default="v1.20.0-eksbuild.1", pattern=_ADDON_VERSION)
    coredns: str = Field(default="v1.12.1-eksbuild.2", pattern=_ADDON_VERSION)
    kube_proxy: str = Field(default="v1.33.0-eksbuild.2", pattern=_ADDON_VERSION)
    ebs_csi_driver: str = Field(default="v1.45.0-eksbuild.2", pattern=_ADDON_VERSION)
    pod_identity_agent: str = Field(default="v1.3.7-eksbuild.2", pattern=_ADDON_VERSION)


class ClusterConfig(StrictModel):
    kubernetes_version: str = "1.33"
    addons: AddonVersions = Field(default_factory=AddonVersions)
    # Public endpoint is only ever allowed with an explicit allow-list; 0.0.0.0/0 is refused below.
    endpoint_public_access: bool
    public_access_cidrs: list[str] = Field(default_factory=list)
    system_nodes: NodeGroupConfig
    gpu_nodes: GpuNodeGroupConfig
    # IAM principals granted cluster admin through EKS access entries (no implicit creator admin).
    admin_role_arns: list[str] = Field(default_factory=list)
    # The role CI deploys with (cluster admin) and the read-only role CI previews with (AmazonEKSViewPolicy): from
    # config, never from the caller identity, so a plan made by the preview role is the plan the deploy role
    # applies (`pulumi up --plan`). Required outside dev (stack.py floor); in dev an unset deployRoleArn falls
    # back to the identity running `pulumi up` (a personal stack).
    deploy_role_arn: str | None = None
    preview_role_arn: str | None = None
    log_retention_days: int = 90
    # EKS deletion protection: a `pulumi destroy` or a replace cannot take the control plane down by accident.
    deletion_protection: bool
    autoscaler: Literal["cluster-autoscaler"] = "cluster-autoscaler"
    # Create the account's service-linked roles the stack's key policies name (infra/service_linked_roles.py).
    # False only for an account that already has them (CreateServiceLinkedRole refuses a second one); the roles
    # are then looked up, so a missing one fails the preview.
    create_service_linked_roles: bool

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in SUPPORTED_VERSIONS:
            raise ValueError(f"{v!r} is not a supported EKS version; allowed: {', '.join(SUPPORTED_VERSIONS)}")
        return v

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        return log_retention(v)

    @field_validator("admin_role_arns")
    @classmethod
    def _admins(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not ROLE_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        if len(set(v)) != len(v):
            raise ValueError(f"{v} lists a role twice (each role gets one EKS access entry)")
        return v

    @field_validator("deploy_role_arn", "preview_role_arn")
    @classmethod
    def _ci_role(cls, v: str | None) -> str | None:
        if v is not None and not ROLE_ARN.match(v):
            raise ValueError(f"{v!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            net = ipaddress.ip_network(c, strict=False)
            if net.prefixlen == 0:
                raise ValueError(f"{c!r} opens the API server to the internet; list specific CIDRs")
        return v

    @model_validator(mode="after")
    def _public(self) -> ClusterConfig:
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError("endpointPublicAccess requires a non-empty publicAccessCidrs allow-list")
        if not self.endpoint_public_access and self.public_access_cidrs:
            raise ValueError("publicAccessCidrs is set but endpointPublicAccess is false")
        # One access entry per principal: EKS refuses a second entry for the same role.
        ci_roles = [a for a in (self.deploy_role_arn, self.preview_role_arn) if a]
        if len(set(ci_roles)) != len(ci_roles):
            raise ValueError("previewRoleArn: must differ from deployRoleArn (the preview role is read-only)")
        for arn in ci_roles:
            if arn in self.admin_role_arns:
                raise ValueError(f"adminRoleArns: {arn!r} is already the deploy or preview role (one entry per role)")
        # kube-proxy must run the control plane's minor version; a mismatch is skew EKS refuses or breaks on.
        if not self.addons.kube_proxy.startswith(f"v{self.kubernetes_version}."):
            raise ValueError(
                f"addons.kubeProxy: {self.addons.kube_proxy!r} does not match kubernetesVersion "
                f"{self.kubernetes_version!r} (expected 'v{self.kubernetes_version}.<patch>-eksbuild.<n>')"
            )
        return self
