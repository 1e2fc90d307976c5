"""The pack behind pulumi_policy's own analyzer servicer — the object the Pulumi CLI talks to over gRPC — gives
the same verdicts as the offline evaluator.

No Pulumi CLI can run here, so this is the closest proof of the CLI path: protobuf requests built the way the
engine builds them (properties as a Struct, pack config through Configure, stack resources with parents and
dependencies), answered by pulumi_policy's servicer with our policies, compared with `evaluate_plan`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies.evaluator import _property_dependencies, evaluate_plan, stack_pack_config
from policies.rules import ALL_POLICIES

_LEVELS = {
    "advisory": proto.ADVISORY,
    "mandatory": proto.MANDATORY,
    "remediate": proto.REMEDIATE,
    "disabled": proto.DISABLED,
}
_NAMES = {v: k for k, v in _LEVELS.items()}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _servicer(pack_config: dict[str, Any]) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer("visionrag-policies", "0.1.0", list(ALL_POLICIES), EnforcementLevel.MANDATORY)
    configs = {}
    for name, entry in pack_config.items():
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level = _LEVELS[entry.pop("enforcementLevel", "mandatory")]
        configs[name] = proto.PolicyConfig(enforcementLevel=level, properties=_struct(entry))
    servicer.Configure(proto.ConfigureAnalyzerRequest(policyConfig=configs), None)
    return servicer


def _engine_verdicts(plan: dict[str, Any], pack_config: dict[str, Any]) -> set[tuple[str, str, str]]:
    servicer = _servicer(pack_config)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    found: set[tuple[str, str, str]] = set()
    stack = []
    for r in plan["resources"]:
        props = _struct(r["inputs"])
        response = servicer.Analyze(
            proto.AnalyzeRequest(type=r["type"], properties=props, urn=r["urn"], name=r["name"]), None
        )
        # The engine attributes a resource policy's diagnostics to the resource it sent.
        found |= {(d.policyName, d.urn or r["urn"], _NAMES[d.enforcementLevel]) for d in response.diagnostics}
        deps = {k: proto.AnalyzerPropertyDependencies(urns=v) for k, v in _property_dependencies(r, by_urn).items()}
        stack.append(
            proto.AnalyzerResource(
                type=r["type"],
                properties=props,
                urn=r["urn"],
                name=r["name"],
                parent=r.get("parent") or "",
                dependencies=r.get("dependencies") or [],
                propertyDependencies=deps,
            )
        )
    response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=stack), None)
    found |= {(d.policyName, d.urn, _NAMES[d.enforcementLevel]) for d in response.diagnostics}
    return found


def _evaluator_verdicts(plan: dict[str, Any], pack_config: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v.policy, v.urn or "", v.level) for v in evaluate_plan(plan, pack_config)}


@pytest.fixture(scope="module")
def real_prod(records) -> dict[str, Any]:
    return records["prod"].to_plan()


def test_servicer_passes_the_real_prod_plan(real_prod) -> None:
    assert _engine_verdicts(real_prod, stack_pack_config("prod")) == set()


def test_servicer_and_evaluator_agree_on_a_weakened_plan(real_prod) -> None:
    plan = copy.deepcopy(real_prod)
    for r in plan["resources"]:
        if r["type"] == "aws:eks/cluster:Cluster":
            r["inputs"]["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])
        if r["type"] == "aws:s3/bucketVersioning:BucketVersioning" and r["inputs"]["bucket"].endswith("-pages"):
            r["inputs"]["versioningConfiguration"] = {"status": "Suspended"}
        if r["type"] == "aws:kms/key:Key":
            r["inputs"]["enableKeyRotation"] = False
    config = stack_pack_config("prod")
    config["kms-key-rotation"] = {"enforcementLevel": "advisory", "justification": "test"}
    engine = _engine_verdicts(plan, config)
    assert engine == _evaluator_verdicts(plan, config)
    assert {(p, level) for p, _, level in engine} == {
        ("eks-endpoint-private", "mandatory"),
        ("s3-versioning", "mandatory"),
        ("kms-key-rotation", "advisory"),
    }
