"""The embedder lands only on GPU nodes; the add-ons are pinned and configured as reviewed."""

from __future__ import annotations

from typing import Any

import pytest

from infra.node_group import GPU_LABEL, GPU_TAINT
from infra.workloads.addons import CHARTS
from stacks.engine.offline import Record
from tests.infra.workloads.graph import DEPLOYMENT, RELEASE, by_name, workloads

EXACT_TOLERATION = {"key": GPU_TAINT[0], "operator": "Equal", "value": GPU_TAINT[1], "effect": "NoSchedule"}


def _releases(record: Record) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in record.of_type(RELEASE)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_embedder_lands_only_on_gpu_nodes(wl_records: dict[str, Record], stack: str) -> None:
    pod = by_name(wl_records[stack], DEPLOYMENT, "embedder").inputs["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": GPU_LABEL[0], "operator": "In", "values": [GPU_LABEL[1]]}]}]
    assert pod["tolerations"] == [EXACT_TOLERATION]
    server = pod["containers"][0]
    assert server["resources"]["requests"]["nvidia.com/gpu"] == server["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_nothing_else_tolerates_the_gpu_taint(wl_records: dict[str, Record]) -> None:
    for r, pod in workloads(wl_records["prod"]):
        if r.inputs["metadata"]["name"] != "embedder":
            assert not pod["spec"].get("tolerations"), r.name
            for c in pod["spec"]["containers"]:
                assert "nvidia.com/gpu" not in c["resources"]["limits"]


def test_weights_come_from_the_models_bucket_by_init_container(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    pod = by_name(record, DEPLOYMENT, "embedder").inputs["spec"]["template"]["spec"]
    (sync,) = pod["initContainers"]
    env = {e["name"]: e["value"] for e in sync["env"]}
    assert env["MODEL_BUCKET"] == record.config.physical_name("models")
    assert env["MODEL_PREFIX"] == "vidore/colpali-v1.3-hf"
    assert sync["image"] == record.config.workloads.worker.image  # default: the worker image (python + boto3)
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert "emptyDir" in models
    server_mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert server_mounts["models"]["readOnly"] is True


def test_charts_are_pinned(wl_records: dict[str, Record]) -> None:
    releases = _releases(wl_records["prod"])
    assert set(releases) == set(CHARTS)
    for rel, inputs in releases.items():
        chart, version, repo = CHARTS[rel]
        assert inputs["chart"] == chart and inputs["version"] == version
        assert inputs["repositoryOpts"]["repo"] == repo
        assert inputs["namespace"] == "visionrag-system"


def test_load_balancer_controller_has_region_and_vpc_set(wl_records: dict[str, Record]) -> None:
    values = _releases(wl_records["prod"])["aws-load-balancer-controller"]["values"]
    assert values["region"] == "us-east-1"
    assert values["vpcId"] == "vpc-0123456789abcdef0"
    assert values["clusterName"] == "visionrag-prod"
    assert values["serviceAccount"] == {"create": False, "name": "aws-load-balancer-controller"}
    assert values["enableServiceMutatorWebhook"] is False


def test_device_plugin_tolerates_the_gpu_taint_exactly(wl_records: dict[str, Record]) -> None:
    values = _releases(wl_records["prod"])["nvidia-device-plugin"]["values"]
    assert values["tolerations"] == [EXACT_TOLERATION]
    term = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term[0]["matchExpressions"][0]["key"] == GPU_LABEL[0]


def test_external_secrets_operator_is_namespace_scoped(wl_records: dict[str, Record]) -> None:
    values = _releases(wl_records["prod"])["external-secrets"]["values"]
    assert values["scopedNamespace"] == "visionrag" and values["scopedRBAC"] is True
    assert values["processClusterStore"] is False


def test_autoscaler_matches_cluster_and_scales_only_owned_groups(wl_records: dict[str, Record]) -> None:
    import json

    record = wl_records["prod"]
    values = _releases(record)["cluster-autoscaler"]["values"]
    assert values["autoDiscovery"]["clusterName"] == "visionrag-prod"
    assert values["image"]["tag"].startswith(f"v{record.config.cluster.kubernetes_version}.")
    policy = next(
        json.loads(p.inputs["policy"])
        for p in record.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["name"] == "cluster-autoscaler-scoped"
    )
    scale = next(s for s in policy["Statement"] if s["Sid"] == "ScaleOwnGroups")
    assert scale["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/visionrag-prod": "owned"}}
