"""The policy pack keeps its own copies of a few platform limits (it is deployed on its own and imports nothing
from infra/): each copy must agree with the component that owns the limit, or the pack would flag what the
program builds, or let through what the program itself refuses."""

from __future__ import annotations

from typing import Any

from infra.cdn import MIN_PROTOCOL_VERSION
from infra.cluster import CONTROL_PLANE_LOG_TYPES
from infra.edge import TLS_POLICY
from infra.node_group import GPU_AMI_TYPES, GPU_FAMILIES
from policies.rules import BY_NAME, cdn, cluster, edge


def _default(policy: str, knob: str) -> Any:
    schema = BY_NAME[policy].config_schema
    assert schema is not None
    return schema.properties[knob]["default"]


def test_gpu_families_match_the_node_group_component() -> None:
    assert list(GPU_FAMILIES) == cluster.GPU_FAMILIES_DEFAULT
    assert _default("eks-gpu-node-group", "allowedInstanceFamilies") == list(GPU_FAMILIES)
    # Every family the program may use is one the pack recognises as a GPU family.
    assert set(GPU_FAMILIES) <= set(cluster._GPU_FAMILY_PREFIXES)


def test_default_gpu_ami_types_match_the_node_group_component() -> None:
    # The pack knows more NVIDIA AMI types (to recognise them); the ones it allows by default are the program's.
    assert _default("eks-gpu-node-group", "allowedAmiTypes") == list(GPU_AMI_TYPES)
    assert set(GPU_AMI_TYPES) <= set(cluster.GPU_AMI_TYPES)


def test_control_plane_log_types_match_the_cluster_component() -> None:
    schema = BY_NAME["eks-control-plane-logs"].config_schema
    assert schema is not None
    assert schema.properties["requiredLogTypes"]["items"]["enum"] == list(CONTROL_PLANE_LOG_TYPES)
    assert set(_default("eks-control-plane-logs", "requiredLogTypes")) <= set(CONTROL_PLANE_LOG_TYPES)


def test_tls_policies_the_program_uses_are_allowed_by_default() -> None:
    assert TLS_POLICY in edge.TLS_POLICIES_DEFAULT
    assert MIN_PROTOCOL_VERSION in cdn.TLS_VERSIONS_DEFAULT
