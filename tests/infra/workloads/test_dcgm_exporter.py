"""The DCGM exporter: GPU metrics on :9400, only on GPU nodes, reachable by the managed scraper, pinned."""

from __future__ import annotations

from typing import Any

import pytest

from infra.network import subnet_layout
from infra.observability import SCRAPE_PORTS
from infra.workloads.addons import CHARTS, DCGM_EXPORTER_IMAGE
from stacks.engine.offline import Record
from tests.infra.workloads.graph import NAMESPACE, NETPOL, RELEASE

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def _release(record: Record) -> dict[str, Any]:
    found = [r.inputs for r in record.of_type(RELEASE) if r.inputs["name"] == "dcgm-exporter"]
    assert len(found) == 1, "expected exactly one dcgm-exporter release"
    return found[0]


def _gpu_group(record: Record) -> dict[str, Any]:
    groups = [r.inputs for r in record.of_type(NODE_GROUP) if r.inputs.get("taints")]
    assert len(groups) == 1, "expected one tainted (GPU) node group"
    return groups[0]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_exporter_runs_on_exactly_the_gpu_nodes(records: dict[str, Record], stack: str) -> None:
    """Tolerations and node selector are derived from the recorded GPU node group, not restated."""
    record = records[stack]
    values = _release(record)["values"]
    group = _gpu_group(record)
    expected = [
        {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": EFFECTS[t["effect"]]}
        for t in group["taints"]
    ]
    assert values["tolerations"] == expected  # exactly the taint: no blanket `operator: Exists`
    ((key, value),) = values["nodeSelector"].items()
    assert group["labels"][key] == value == "true" and key == "nvidia.com/gpu.present"
    assert "affinity" not in values


def test_exporter_is_pinned_in_the_privileged_addons_namespace(records: dict[str, Record]) -> None:
    inputs = _release(records["prod"])
    chart, version, repo = CHARTS["dcgm-exporter"]
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (chart, version, repo)
    assert chart == "dcgm-exporter" and version[0].isdigit()
    image = inputs["values"]["image"]
    assert (image["repository"], image["tag"]) == DCGM_EXPORTER_IMAGE and image["tag"] != "latest"
    assert image["tag"].split("-")[1] == version  # the exporter release the chart ships
    namespaces = {
        r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in records["prod"].of_type(NAMESPACE)
    }
    assert namespaces[inputs["namespace"]]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert inputs["namespace"] != "visionrag"  # never in the restricted app namespace


def test_exporter_serves_the_port_the_scraper_keeps(records: dict[str, Record]) -> None:
    values = _release(records["prod"])["values"]
    port = next(p for p, job in SCRAPE_PORTS.items() if job == "dcgm-exporter")
    assert port == 9400
    assert values["service"]["port"] == port and values["service"]["address"] == f":{port}"
    # No Prometheus Operator here: a ServiceMonitor would fail the release on a missing CRD.
    assert values["serviceMonitor"] == {"enabled": False}


def test_scraper_may_reach_the_exporter_through_the_default_deny(records: dict[str, Record]) -> None:
    inputs = _release(records["prod"])
    label = inputs["values"]["nameOverride"]
    policies = [
        r.inputs
        for r in records["prod"].of_type(NETPOL)
        if r.inputs["metadata"]["namespace"] == inputs["namespace"]
        and (r.inputs["spec"].get("podSelector") or {}).get("matchLabels") == {"app.kubernetes.io/name": label}
    ]
    assert len(policies) == 1
    (rule,) = policies[0]["spec"]["ingress"]
    assert [int(p["port"]) for p in rule["ports"]] == [9400]
    net = records["prod"].config.network
    # The scraper's own (control) subnets: never the VPC, which holds every pod.
    assert [peer["ipBlock"]["cidr"] for peer in rule["from"]] == subnet_layout(net.vpc_cidr, net.az_count)["control"]


def test_exporter_gets_no_extra_privileges(records: dict[str, Record]) -> None:
    values = _release(records["prod"])["values"]
    ctx = values["securityContext"]
    assert ctx["privileged"] is False and ctx["allowPrivilegeEscalation"] is False
    # `add: []` replaces the chart's default `add: [SYS_ADMIN]` (Helm merges maps, replaces lists): default
    # counters, no DCP profiling. tests/policies/test_helm_values.py judges the merged values.
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": []}
    assert "dcp" not in " ".join(values["arguments"])
    assert values["kubernetes"]["enablePodLabels"] is False  # so it needs no cluster-wide pod read
    limits = values["resources"]["limits"]
    assert limits["cpu"] and limits["memory"] and "nvidia.com/gpu" not in limits
