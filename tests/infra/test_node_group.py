"""Node groups: hardened launch templates, private subnets, GPU taint/label, scale-from-zero autoscaler tags."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.node_group import (
    ACCELERATOR_LABEL,
    CAPACITY_TYPES,
    GPU_LABEL,
    GPU_TAINT,
    NodeGroup,
    NodeGroupArgs,
    NodePool,
    cpu_ami_type,
    cpu_architecture,
    gpus_per_instance,
)
from stacks.engine.offline import Record, RecordedResource
from tests.infra.platform_graph import EDITED_DEV, STACKS, component, key_arn, under

CA = "k8s.io/cluster-autoscaler"


def _group(record: Record, pool: str) -> RecordedResource:
    return component(record, "visionrag:infra:NodeGroup", f"cluster-{pool}")


def _one(record: Record, pool: str, type_: str) -> RecordedResource:
    (found,) = under(record, _group(record, pool), type_)
    return found


def _asg_tags(record: Record, pool: str) -> dict[str, dict[str, Any]]:
    ng = _one(record, pool, "aws:eks/nodeGroup:NodeGroup")
    asg = ng.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = under(record, _group(record, pool), "aws:autoscaling/tag:Tag")
    # Every hint is attached to this node group's own Auto Scaling group.
    assert {t.inputs["autoscalingGroupName"] for t in tags} == {asg}
    return {t.inputs["tag"]["key"]: t.inputs["tag"] for t in tags}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("pool", ["system", "gpu"])
def test_launch_template_is_hardened(records: dict[str, Record], stack: str, pool: str) -> None:
    record = records[stack]
    lt = _one(record, pool, "aws:ec2/launchTemplate:LaunchTemplate")
    md = lt.inputs["metadataOptions"]
    assert md["httpTokens"] == "required"
    assert md["httpPutResponseHopLimit"] == 1
    assert md["httpEndpoint"] == "enabled"
    assert "keyName" not in lt.inputs and "imageId" not in lt.inputs
    cfg = record.config.cluster.gpu_nodes if pool == "gpu" else record.config.cluster.system_nodes
    (root,) = [b for b in lt.inputs["blockDeviceMappings"] if b["deviceName"] == "/dev/xvda"]
    for bdm in lt.inputs["blockDeviceMappings"]:
        ebs = bdm["ebs"]
        assert ebs["encrypted"] == "true"
        assert ebs["volumeType"] == "gp3"
        assert ebs["kmsKeyId"] == key_arn(record, "ebs")
    assert root["ebs"]["volumeSize"] == cfg.disk_size_gib  # AL2023: one volume, OS and data


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("pool", ["system", "gpu"])
def test_nodes_private_no_ssh_template_used(records: dict[str, Record], stack: str, pool: str) -> None:
    record = records[stack]
    ng = _one(record, pool, "aws:eks/nodeGroup:NodeGroup")
    lt = _one(record, pool, "aws:ec2/launchTemplate:LaunchTemplate")
    assert ng.inputs["subnetIds"] == record.outputs["privateSubnetIds"]
    assert "remoteAccess" not in ng.inputs
    assert ng.inputs["launchTemplate"]["id"] == lt.outputs["id"]
    assert ng.inputs["version"] == record.config.cluster.kubernetes_version
    cfg = getattr(record.config.cluster, "gpu_nodes" if pool == "gpu" else "system_nodes")
    assert ng.inputs["instanceTypes"] == cfg.instance_types
    sc = ng.inputs["scalingConfig"]
    assert (sc["minSize"], sc["maxSize"]) == (cfg.min_size, cfg.max_size)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_group_taint_label_ami(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    gpu = _one(record, "gpu", "aws:eks/nodeGroup:NodeGroup")
    assert gpu.inputs["amiType"] == record.config.cluster.gpu_nodes.ami_type == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["taints"] == [{"key": GPU_TAINT[0], "value": GPU_TAINT[1], "effect": GPU_TAINT[2]}]
    assert gpu.inputs["labels"][GPU_LABEL[0]] == GPU_LABEL[1]
    assert gpu.inputs["labels"][ACCELERATOR_LABEL] == "nvidia-a10g"  # g5: NVIDIA A10G
    system = _one(record, "system", "aws:eks/nodeGroup:NodeGroup")
    assert ACCELERATOR_LABEL not in system.inputs["labels"]
    assert not system.inputs.get("taints")
    assert GPU_LABEL[0] not in system.inputs["labels"]
    assert "NVIDIA" not in system.inputs["amiType"]


@pytest.mark.parametrize(("stack", "system"), [("dev", "SPOT"), ("staging", "ON_DEMAND"), ("prod", "ON_DEMAND")])
def test_capacity_type_follows_config(records: dict[str, Record], stack: str, system: str) -> None:
    # Dev's system nodes run on Spot from two interchangeable x86_64 pools; the tiers that serve users do not.
    record = records[stack]
    ng = _one(record, "system", "aws:eks/nodeGroup:NodeGroup")
    assert ng.inputs["capacityType"] == record.config.cluster.system_nodes.capacity_type == system
    if system == "SPOT":
        assert len(set(ng.inputs["instanceTypes"])) >= 2
        assert ng.inputs["amiType"] == cpu_ami_type(ng.inputs["instanceTypes"])
    assert _one(record, "gpu", "aws:eks/nodeGroup:NodeGroup").inputs["capacityType"] == "ON_DEMAND"


def test_capacity_types_are_the_eks_values() -> None:
    assert CAPACITY_TYPES == ("ON_DEMAND", "SPOT")


def test_gpu_scales_from_zero_in_dev_and_keeps_one_in_prod(records: dict[str, Record]) -> None:
    dev = _one(records["dev"], "gpu", "aws:eks/nodeGroup:NodeGroup").inputs["scalingConfig"]
    prod = _one(records["prod"], "gpu", "aws:eks/nodeGroup:NodeGroup").inputs["scalingConfig"]
    assert dev["minSize"] == 0 and dev["maxSize"] == 1
    assert prod["minSize"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_asg_carries_scale_from_zero_hints(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    tags = _asg_tags(record, "gpu")
    cluster = record.outputs["clusterName"]
    expected = {
        f"{CA}/enabled": "true",
        f"{CA}/{cluster}": "owned",
        f"{CA}/node-template/resources/nvidia.com/gpu": "1",
        f"{CA}/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{CA}/node-template/label/nvidia.com/gpu.present": "true",
        # cluster-autoscaler's AWS GPU label: without it a fresh GPU node (device plugin not yet up) looks
        # GPU-less and the autoscaler scales out again; the template copy covers scale-from-zero.
        f"{CA}/node-template/label/{ACCELERATOR_LABEL}": "nvidia-a10g",
    }
    for key, value in expected.items():
        assert tags[key]["value"] == value, key
    assert all(t["propagateAtLaunch"] is False for t in tags.values())
    system = _asg_tags(record, "system")
    assert system[f"{CA}/enabled"]["value"] == "true"
    assert not any("nvidia" in k for k in system)


def test_gpu_count_follows_instance_size(record_of: Any) -> None:
    record = record_of("dev", overrides=EDITED_DEV)  # g6e.12xlarge
    assert _asg_tags(record, "gpu")[f"{CA}/node-template/resources/nvidia.com/gpu"]["value"] == "4"
    assert _asg_tags(record, "gpu")[f"{CA}/node-template/label/{ACCELERATOR_LABEL}"]["value"] == "nvidia-l40s"


def test_bottlerocket_gets_encrypted_os_and_data_volumes(record_of: Any) -> None:
    record = record_of("dev", overrides=EDITED_DEV)  # BOTTLEROCKET_x86_64_NVIDIA
    lt = _one(record, "gpu", "aws:ec2/launchTemplate:LaunchTemplate")
    devices = {b["deviceName"]: b["ebs"] for b in lt.inputs["blockDeviceMappings"]}
    assert set(devices) == {"/dev/xvda", "/dev/xvdb"}
    assert devices["/dev/xvdb"]["volumeSize"] == record.config.cluster.gpu_nodes.disk_size_gib
    assert all(v["encrypted"] == "true" and v["kmsKeyId"] == key_arn(record, "ebs") for v in devices.values())


# ---- the component refuses what would weaken or break the group ---------------------------------------------
def _args(**changes: Any) -> NodeGroupArgs:
    base = NodeGroupArgs(
        cluster_name="c",
        node_group_name="c-gpu",
        kubernetes_version="1.33",
        node_role_arn="arn:aws:iam::123456789012:role/c-node",
        subnet_ids=["subnet-a", "subnet-b"],
        security_group_ids=["sg-1"],
        ebs_key_arn="arn:aws:kms:us-east-1:123456789012:key/ebs",
        pool=NodePool(instance_types=["g5.xlarge"], min_size=0, max_size=1, ami_type="AL2023_x86_64_NVIDIA"),
        gpu=True,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pool": NodePool(instance_types=["m6i.large"], min_size=0, max_size=1, ami_type="AL2023_x86_64_NVIDIA")},
         "instance_types"),
        ({"pool": NodePool(instance_types=["g5.xlarge"], min_size=0, max_size=1)}, "ami_type"),
        ({"pool": NodePool(instance_types=["g5.xlarge", "g5.12xlarge"], min_size=0, max_size=1,
                           ami_type="AL2023_x86_64_NVIDIA")}, "instance_types"),
        ({"pool": NodePool(instance_types=["g5.xlarge"], min_size=2, max_size=1, ami_type="AL2023_x86_64_NVIDIA")},
         "min_size"),
        ({"pool": NodePool(instance_types=["g5.xlarge"], min_size=0, max_size=2, desired_size=3,
                           ami_type="AL2023_x86_64_NVIDIA")}, "desired_size"),
        ({"gpu": False}, "ami_type"),
        ({"subnet_ids": []}, "subnet_ids"),
        # One accelerator label per group: a g5 (A10G) and a g6 (L4) cannot share it.
        ({"pool": NodePool(instance_types=["g5.xlarge", "g6.xlarge"], min_size=0, max_size=1,
                           ami_type="AL2023_x86_64_NVIDIA")}, "GPU models"),
        # Spot from one instance type is one Spot pool per AZ: an interrupted node may have no replacement.
        ({"pool": NodePool(instance_types=["t3a.medium"], min_size=1, max_size=2, capacity_type="SPOT"),
          "gpu": False}, "capacity_type SPOT needs at least 2"),
        ({"pool": NodePool(instance_types=["t3a.medium", "t3a.medium"], min_size=1, max_size=2,
                           capacity_type="SPOT"), "gpu": False}, "capacity_type SPOT needs at least 2"),
        ({"pool": NodePool(instance_types=["t3a.medium"], min_size=1, max_size=2, capacity_type="CAPACITY_BLOCK"),
          "gpu": False}, "capacity_type: 'CAPACITY_BLOCK' is not allowed; allowed: ON_DEMAND, SPOT"),
    ],
)  # fmt: skip
def test_args_refuse_bad_groups(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NodeGroup("ng", _args(**changes))


def test_gpu_counts() -> None:
    assert gpus_per_instance("g5.xlarge") == 1
    assert gpus_per_instance("p4d.24xlarge") == 8
    with pytest.raises(ValueError, match=r"m5\.large"):
        gpus_per_instance("m5.large")


@pytest.mark.parametrize(
    ("instance", "arch"),
    [("t3a.medium", "x86_64"), ("m6i.large", "x86_64"), ("g5.xlarge", "x86_64"), ("g4ad.xlarge", "x86_64"),
     ("m7i-flex.large", "x86_64"), ("t4g.medium", "arm64"), ("m7g.large", "arm64"), ("c7gn.xlarge", "arm64"),
     ("r8gd.large", "arm64"), ("im4gn.large", "arm64"), ("g5g.xlarge", "arm64"), ("a1.large", "arm64")],
)  # fmt: skip
def test_cpu_architecture_follows_the_family(instance: str, arch: str) -> None:
    assert cpu_architecture(instance) == arch


def test_cpu_ami_type_follows_the_architecture() -> None:
    assert cpu_ami_type(["t3a.medium", "m6i.large"]) == "AL2023_x86_64_STANDARD"
    assert cpu_ami_type(["t4g.medium", "m7g.large"]) == "AL2023_ARM_64_STANDARD"
    with pytest.raises(ValueError, match=r"mix architectures \['arm64', 'x86_64'\]"):
        cpu_ami_type(["m6i.large", "m7g.large"])


@pytest.mark.parametrize(
    ("instance", "ami"),
    [("m7g.large", "AL2023_x86_64_STANDARD"), ("m6i.large", "AL2023_ARM_64_STANDARD"),
     ("t4g.medium", "BOTTLEROCKET_x86_64")],
)  # fmt: skip
def test_a_cpu_group_whose_ami_cannot_boot_its_instances_is_refused(instance: str, ami: str) -> None:
    pool = NodePool(instance_types=[instance], min_size=1, max_size=2, ami_type=ami)
    with pytest.raises(ValueError, match=rf"pool.ami_type: '{ami}' boots .* but \['{instance}'\] is not"):
        NodeGroup("ng", _args(pool=pool, gpu=False))
