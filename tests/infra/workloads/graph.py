"""Reading Kubernetes objects back out of a recorded stack (inputs are camelCase, numbers may be floats)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from stacks.engine.offline import Record, RecordedResource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CRONJOB = "kubernetes:batch/v1:CronJob"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SA = "kubernetes:core/v1:ServiceAccount"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
WORKLOAD_TYPES = (DEPLOYMENT, STATEFULSET, CRONJOB)


def name(r: RecordedResource) -> str:
    return str(r.inputs["metadata"]["name"])


def pod_template(r: RecordedResource) -> dict[str, Any]:
    spec = r.inputs["spec"]
    if r.type == CRONJOB:
        return dict(spec["jobTemplate"]["spec"]["template"])
    return dict(spec["template"])


def workloads(record: Record) -> Iterator[tuple[RecordedResource, dict[str, Any]]]:
    for r in record.resources:
        if r.type in WORKLOAD_TYPES:
            yield r, pod_template(r)


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*spec.get("containers", []), *(spec.get("initContainers") or [])]


def by_name(record: Record, type_: str, object_name: str) -> RecordedResource:
    found = [r for r in record.of_type(type_) if name(r) == object_name]
    assert len(found) == 1, f"expected one {type_} named {object_name}, found {len(found)}"
    return found[0]


def role_policy_for(record: Record, service_account: str) -> dict[str, Any]:
    """The inline policy of the IRSA role annotated on the ServiceAccount."""
    sa = by_name(record, SA, service_account)
    role_arn = sa.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = next(r for r in record.of_type(ROLE) if r.outputs["arn"] == role_arn)
    policy = next(p for p in record.of_type(ROLE_POLICY) if role.urn in p.dependencies)
    return dict(json.loads(policy.inputs["policy"]))


def trust_for(record: Record, service_account: str) -> dict[str, Any]:
    sa = by_name(record, SA, service_account)
    role_arn = sa.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = next(r for r in record.of_type(ROLE) if r.outputs["arn"] == role_arn)
    return dict(json.loads(role.inputs["assumeRolePolicy"]))


def actions(statement: dict[str, Any]) -> list[str]:
    a = statement.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def resources_of(statement: dict[str, Any]) -> list[str]:
    r = statement.get("Resource", [])
    return [r] if isinstance(r, str) else list(r)
