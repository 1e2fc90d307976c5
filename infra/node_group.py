"""NodeGroup: one EKS managed node group built on a hardened launch template.

Every node: IMDSv2 only with a hop limit of 1 (pods cannot reach the node's credentials; they use IRSA), an
encrypted gp3 root volume under the project's EBS key, no SSH key and no remote access, private subnets only.
GPU groups carry the NVIDIA taint and label, and the cluster-autoscaler node-template tags that let the
autoscaler scale the group up from zero nodes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws

from infra.options import depends_on_of

GPU_FAMILIES = ("g5", "g6", "g6e", "p4d", "p5")
# The AMI types that ship the NVIDIA driver (stacks/config/cluster.py offers exactly these for gpuNodes.amiType).
GpuAmiType = Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"]
GPU_AMI_TYPES: tuple[str, ...] = get_args(GpuAmiType)
DISK_SIZE_GIB = (20, 2000)  # a node's root volume: room for the AMI and images, and a sane ceiling
CPU_AMI_TYPES = ("AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "BOTTLEROCKET_x86_64", "BOTTLEROCKET_ARM_64")
# The CPU architecture each CPU AMI type boots: EKS refuses a node group whose instance types do not run it.
CPU_AMI_ARCH = {
    "AL2023_x86_64_STANDARD": "x86_64",
    "AL2023_ARM_64_STANDARD": "arm64",
    "BOTTLEROCKET_x86_64": "x86_64",
    "BOTTLEROCKET_ARM_64": "arm64",
}
DEFAULT_CPU_AMI = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
# EKS managed node group capacity types (stacks/config/cluster.py offers exactly these for <pool>.capacityType).
# SPOT: EKS builds the Auto Scaling group with a capacity-optimized Spot allocation across the listed types and
# Capacity Rebalancing on, and cordons and drains a node that gets a rebalance recommendation once its
# replacement is Ready. The more interchangeable types listed, the more Spot pools the group can draw from.
# (Capacity Blocks, the third EKS value, are for reserved GPU blocks; not offered.)
CapacityType = Literal["ON_DEMAND", "SPOT"]
CAPACITY_TYPES: tuple[str, ...] = get_args(CapacityType)
SPOT_MIN_INSTANCE_TYPES = 2
# EC2 names a family <class letters><generation><attribute letters>; Graviton (arm64) families carry a "g" among
# the attributes (t4g, m7g, c7gn, r8gd, im4gn, is4gen, g5g) and a1 is the first Graviton. Everything else is x86.
_FAMILY = re.compile(r"^(?P<cls>[a-z]+)(?P<gen>\d+)(?P<attrs>[a-z]*)(-[a-z0-9]+)?$")

GPU_TAINT = ("nvidia.com/gpu", "true", "NO_SCHEDULE")
GPU_LABEL = ("nvidia.com/gpu.present", "true")
POOL_LABEL = "visionrag.io/pool"
# cluster-autoscaler's AWS provider treats a node as a GPU node by this label (aws_cloud_provider.go GPULabel):
# without it, a new GPU node whose device plugin has not yet advertised `nvidia.com/gpu` looks like a node
# without the GPU the pending pod asked for, and the autoscaler scales out again (cloudprovider/aws/README.md,
# "Special note on GPU instances"). The value names the GPU model of the family.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
ACCELERATORS = {"g5": "nvidia-a10g", "g6": "nvidia-l4", "g6e": "nvidia-l40s", "p4d": "nvidia-a100", "p5": "nvidia-h100"}

# GPUs per instance, by size; used for the autoscaler's scale-from-zero template. Sizes not listed are refused
# (a wrong count would make the autoscaler start nodes that cannot host the pending pod).
_GPUS_BY_SIZE: dict[str, dict[str, int]] = {
    "g5": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4,
           "48xlarge": 8},
    "g6": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4,
           "48xlarge": 8},
    "g6e": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4,
            "48xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p5": {"4xlarge": 1, "48xlarge": 8},
}  # fmt: skip

_CA = "k8s.io/cluster-autoscaler"


def gpus_per_instance(instance_type: str) -> int:
    family, _, size = instance_type.partition(".")
    try:
        return _GPUS_BY_SIZE[family][size]
    except KeyError:
        raise ValueError(
            f"instance_types: {instance_type!r} is not a known GPU instance type; allowed families: "
            f"{', '.join(GPU_FAMILIES)}"
        ) from None


def accelerator(instance_type: str) -> str:
    """The `k8s.amazonaws.com/accelerator` value of a GPU instance type (its family's NVIDIA GPU)."""
    gpus_per_instance(instance_type)  # refuses unknown GPU types with the allowed families
    return ACCELERATORS[instance_type.partition(".")[0]]


def cpu_architecture(instance_type: str) -> str:
    """The CPU architecture of an instance type: arm64 for Graviton, x86_64 otherwise (from the family name)."""
    family = instance_type.partition(".")[0]
    m = _FAMILY.match(family)
    if m is None:
        raise ValueError(f"instance_types: {instance_type!r} is not an EC2 instance type name (<family>.<size>)")
    return "arm64" if family == "a1" or "g" in m["attrs"] else "x86_64"


def cpu_ami_type(instance_types: Sequence[str]) -> str:
    """The AL2023 AMI type for a CPU node group's instance types, which must share one architecture."""
    arches = {cpu_architecture(t) for t in instance_types}
    if len(arches) != 1:
        raise ValueError(
            f"instance_types: {list(instance_types)} mix architectures {sorted(arches)}; one node group boots one "
            "AMI, so list only x86_64 or only Graviton (arm64) types"
        )
    return DEFAULT_CPU_AMI[arches.pop()]


def check_capacity(capacity_type: str, instance_types: Sequence[str]) -> None:
    """Refuse a capacity type EKS does not take, and a Spot group with a single Spot pool per AZ."""
    if capacity_type not in CAPACITY_TYPES:
        raise ValueError(f"capacity_type: {capacity_type!r} is not allowed; allowed: {', '.join(CAPACITY_TYPES)}")
    # One instance type is one Spot pool per AZ: when it runs dry, an interrupted node has no replacement.
    if capacity_type == "SPOT" and len(set(instance_types)) < SPOT_MIN_INSTANCE_TYPES:
        raise ValueError(
            f"instance_types: {list(instance_types)} is one type; capacity_type SPOT needs at least "
            f"{SPOT_MIN_INSTANCE_TYPES} interchangeable types (same vCPU, memory and architecture, e.g. "
            "t3a.medium and t3.medium) so an interrupted node can be replaced from another Spot pool"
        )


@dataclass(frozen=True, kw_only=True)
class NodePool:
    """Size and shape of one node group (from config)."""

    instance_types: Sequence[str]
    min_size: int
    max_size: int
    desired_size: int | None = None
    disk_size_gib: int = 100
    ami_type: str = "AL2023_x86_64_STANDARD"
    capacity_type: str = "ON_DEMAND"


@dataclass(frozen=True, kw_only=True)
class NodeGroupArgs:
    cluster_name: pulumi.Input[str]
    node_group_name: str
    kubernetes_version: str
    node_role_arn: pulumi.Input[str]
    # Private subnets only: nodes never get a public address or sit behind an internet gateway route.
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_ids: Sequence[pulumi.Input[str]]
    ebs_key_arn: pulumi.Input[str]
    pool: NodePool
    gpu: bool
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: NodeGroupArgs) -> None:
    pool = args.pool
    if not pool.instance_types:
        raise ValueError("pool.instance_types: at least one instance type is required")
    if pool.min_size < 0 or pool.max_size < 1:
        raise ValueError(f"pool: min_size ({pool.min_size}) must be >= 0 and max_size ({pool.max_size}) >= 1")
    if pool.min_size > pool.max_size:
        raise ValueError(f"pool: min_size ({pool.min_size}) must be <= max_size ({pool.max_size})")
    if pool.desired_size is not None and not pool.min_size <= pool.desired_size <= pool.max_size:
        raise ValueError(
            f"pool.desired_size: {pool.desired_size} must lie between min_size {pool.min_size} "
            f"and max_size {pool.max_size}"
        )
    lo, hi = DISK_SIZE_GIB
    if not lo <= pool.disk_size_gib <= hi:
        raise ValueError(f"pool.disk_size_gib: {pool.disk_size_gib} must be between {lo} and {hi}")
    if not args.subnet_ids:
        raise ValueError("subnet_ids: at least one private subnet is required")
    check_capacity(pool.capacity_type, pool.instance_types)
    if args.gpu:
        if pool.ami_type not in GPU_AMI_TYPES:
            raise ValueError(f"pool.ami_type: {pool.ami_type!r} has no NVIDIA driver; allowed: {GPU_AMI_TYPES}")
        counts = {gpus_per_instance(t) for t in pool.instance_types}
        models = {accelerator(t) for t in pool.instance_types}
        if len(models) > 1:
            raise ValueError(
                f"pool.instance_types: {list(pool.instance_types)} mix GPU models {sorted(models)}; the node "
                f"label {ACCELERATOR_LABEL} (one per group) must name the group's GPU"
            )
        if len(counts) > 1:
            raise ValueError(
                f"pool.instance_types: {list(pool.instance_types)} mix GPU counts {sorted(counts)}; the "
                "autoscaler's scale-from-zero template needs one GPU count per group"
            )
    elif pool.ami_type not in CPU_AMI_TYPES:
        raise ValueError(f"pool.ami_type: {pool.ami_type!r} is not a CPU AMI type; allowed: {CPU_AMI_TYPES}")
    else:
        wrong = [t for t in pool.instance_types if cpu_architecture(t) != CPU_AMI_ARCH[pool.ami_type]]
        if wrong:
            raise ValueError(
                f"pool.ami_type: {pool.ami_type!r} boots {CPU_AMI_ARCH[pool.ami_type]} but {wrong} "
                f"{'is' if len(wrong) == 1 else 'are'} not; use {cpu_ami_type(pool.instance_types)!r}"
            )


class NodeGroup(pulumi.ComponentResource):
    launch_template: aws.ec2.LaunchTemplate
    node_group: aws.eks.NodeGroup
    asg_name: pulumi.Output[str]
    labels: dict[str, str]

    def __init__(self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pool = args.pool
        tags = dict(args.tags)

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            name=args.node_group_name,
            description=f"hardened nodes of EKS node group {args.node_group_name}",
            # No image_id: EKS picks the AMI for ami_type and keeps it patched on node group updates.
            # No key_name: there is no SSH into nodes (SSM Session Manager through the node role if ever needed).
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # One hop: a packet from a pod (one more hop than the node) never reaches IMDS, so pods cannot
                # take the node role's credentials.
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=self._volumes(args),
            vpc_security_group_ids=list(args.security_group_ids),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )

        self.labels = {POOL_LABEL: "gpu" if args.gpu else "system"}
        taints: list[aws.eks.NodeGroupTaintArgs] = []
        if args.gpu:
            self.labels[GPU_LABEL[0]] = GPU_LABEL[1]
            self.labels[ACCELERATOR_LABEL] = accelerator(pool.instance_types[0])
            taints.append(aws.eks.NodeGroupTaintArgs(key=GPU_TAINT[0], value=GPU_TAINT[1], effect=GPU_TAINT[2]))

        desired = pool.desired_size if pool.desired_size is not None else pool.min_size
        self.node_group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=args.cluster_name,
            node_group_name=args.node_group_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=list(args.subnet_ids),
            version=args.kubernetes_version,
            ami_type=pool.ami_type,
            capacity_type=pool.capacity_type,
            instance_types=list(pool.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size, max_size=pool.max_size, desired_size=desired
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id,
                version=self.launch_template.latest_version.apply(str),
            ),
            labels=self.labels,
            taints=taints,
            tags=tags,
            # The cluster autoscaler owns the desired size once the group exists; re-applying would undo it.
            # The component's depends_on (the CNI add-on) is repeated here: the nodes themselves must wait for it.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["scalingConfig.desiredSize"], depends_on=depends_on_of(opts)
            ),
        )

        self.asg_name = self.node_group.resources.apply(_asg_name)
        # EKS does not copy node group tags to the Auto Scaling group it creates, and the cluster autoscaler
        # reads its discovery and scale-from-zero hints from the ASG. So each hint is an aws.autoscaling.Tag on
        # the ASG named in the node group's `resources` output. propagate_at_launch=False: they describe the
        # group to the autoscaler and mean nothing on the instances.
        for i, (key, value) in enumerate(sorted(self._autoscaler_tags(args).items())):
            aws.autoscaling.Tag(
                f"{name}-ca-tag-{i}",
                autoscaling_group_name=self.asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=child,
            )
        # Ownership tag: with auto-discovery on `<prefix>/<cluster name>`, an autoscaler only manages the groups of
        # its own cluster.
        aws.autoscaling.Tag(
            f"{name}-ca-tag-owner",
            autoscaling_group_name=self.asg_name,
            tag=aws.autoscaling.TagTagArgs(
                key=pulumi.Output.concat(f"{_CA}/", args.cluster_name), value="owned", propagate_at_launch=False
            ),
            opts=child,
        )

        self.register_outputs(
            {
                "node_group_arn": self.node_group.arn,
                "asg_name": self.asg_name,
                "launch_template_id": self.launch_template.id,
            }
        )

    @staticmethod
    def _volumes(args: NodeGroupArgs) -> list[aws.ec2.LaunchTemplateBlockDeviceMappingArgs]:
        def ebs(size: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs:
            return aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=size,
                volume_type="gp3",
                encrypted="true",
                kms_key_id=args.ebs_key_arn,
                delete_on_termination="true",
            )

        if args.pool.ami_type.startswith("BOTTLEROCKET"):
            # Bottlerocket: a small OS volume and a separate data volume for images and ephemeral storage.
            return [
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvda", ebs=ebs(8)),
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvdb", ebs=ebs(args.pool.disk_size_gib)),
            ]
        return [aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvda", ebs=ebs(args.pool.disk_size_gib))]

    def _autoscaler_tags(self, args: NodeGroupArgs) -> dict[str, str]:
        # Discovery (--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,...) plus, for each
        # label and taint, the node-template hint the autoscaler uses to simulate a node while the group is at 0.
        tags = {f"{_CA}/enabled": "true"}
        tags.update({f"{_CA}/node-template/label/{k}": v for k, v in self.labels.items()})
        if args.gpu:
            tags[f"{_CA}/node-template/resources/nvidia.com/gpu"] = str(gpus_per_instance(args.pool.instance_types[0]))
            # The autoscaler spells effects the Kubernetes way (NoSchedule), unlike the EKS API (NO_SCHEDULE).
            tags[f"{_CA}/node-template/taint/{GPU_TAINT[0]}"] = f"{GPU_TAINT[1]}:NoSchedule"
        return tags


def _asg_name(resources: Sequence[aws.eks.outputs.NodeGroupResource] | None) -> str:
    asgs = resources[0].autoscaling_groups if resources else None
    if not asgs or not asgs[0].name:
        raise ValueError("node group reported no Auto Scaling group")
    return asgs[0].name
