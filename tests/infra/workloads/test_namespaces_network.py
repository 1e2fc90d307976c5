"""Namespaces carry Pod Security labels; each starts from default-deny; the allows are exactly the contract."""

from __future__ import annotations

from typing import Any

import pytest

from infra.network import subnet_layout
from stacks.engine.offline import Record
from tests.infra.workloads.graph import NAMESPACE, NETPOL, by_name, name


def _policies(record: Record, namespace: str) -> dict[str, dict[str, Any]]:
    return {name(p): p.inputs["spec"] for p in record.of_type(NETPOL) if p.inputs["metadata"]["namespace"] == namespace}


def test_app_namespace_enforces_restricted(wl_records: dict[str, Record]) -> None:
    labels = by_name(wl_records["prod"], NAMESPACE, "visionrag").inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_addons_namespace_is_separate_and_audited(wl_records: dict[str, Record]) -> None:
    labels = by_name(wl_records["prod"], NAMESPACE, "visionrag-system").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"  # the device plugin mounts host paths
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_namespace_has_default_deny(wl_records: dict[str, Record], stack: str) -> None:
    record = wl_records[stack]
    namespaces = [name(n) for n in record.of_type(NAMESPACE)]
    assert namespaces
    for ns in namespaces:
        deny = _policies(record, ns).get("default-deny")
        assert deny is not None, f"namespace {ns} has no default-deny"
        assert not deny["podSelector"].get("matchLabels")
        assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
        assert not deny.get("ingress") and not deny.get("egress")


def _from_roles(rule: dict[str, Any]) -> set[str]:
    return {p["podSelector"]["matchLabels"]["visionrag.io/role"] for p in rule.get("from", []) if "podSelector" in p}


def test_qdrant_accepts_only_api_worker_snapshots_and_peers(wl_records: dict[str, Record]) -> None:
    qdrant = _policies(wl_records["prod"], "visionrag")["allow-qdrant"]
    assert qdrant["podSelector"]["matchLabels"] == {"visionrag.io/role": "qdrant"}
    sources: set[str] = set()
    for rule in qdrant["ingress"]:
        sources |= _from_roles(rule)
        blocks = [p for p in rule.get("from", []) if "ipBlock" in p]
        if blocks:  # the managed scraper: metrics port only
            assert [int(p["port"]) for p in rule["ports"]] == [6333]
    # restore-drill: prod's monthly drill (tier default) reads and restores through the HTTP API.
    assert sources == {"api", "worker", "snapshots", "restore-drill", "qdrant"}


def test_api_egress_reaches_only_its_dependencies(wl_records: dict[str, Record]) -> None:
    api = _policies(wl_records["prod"], "visionrag")["allow-api"]
    ports = {int(p["port"]) for rule in api["egress"] for p in rule["ports"]}
    # 3310: clamd (staging/prod deploy the scanner); 4318: the OTLP collector (infra/workloads/otel_collector.py).
    assert ports == {6333, 6334, 7000, 6379, 443, 3310, 4318}
    https = next(r for r in api["egress"] if [int(p["port"]) for p in r["ports"]] == [443])
    assert "169.254.169.254/32" in https["to"][0]["ipBlock"]["except"], "pods must not reach the node's IMDS"
    assert "169.254.170.23/32" in https["to"][0]["ipBlock"]["except"], "nor the Pod Identity agent"
    # ALB traffic (IP targets) from the public subnets on the app port, scrapes from the control subnets on the
    # metrics port: never the VPC, which holds every pod.
    net = wl_records["prod"].config.network
    layout = subnet_layout(net.vpc_cidr, net.az_count)
    sources = {
        int(p["port"]): sorted(peer["ipBlock"]["cidr"] for peer in rule["from"])
        for rule in api["ingress"]
        for p in rule["ports"]
    }
    assert sources == {8000: sorted(layout["public"]), 9090: sorted(layout["control"])}


def test_dns_is_allowed_to_kube_dns_only(wl_records: dict[str, Record]) -> None:
    dns = _policies(wl_records["prod"], "visionrag")["allow-dns"]
    (rule,) = dns["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(int(p["port"]), p["protocol"]) for p in rule["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_embedder_is_reachable_from_api_and_worker_only(wl_records: dict[str, Record]) -> None:
    emb = _policies(wl_records["prod"], "visionrag")["allow-embedder"]
    assert set().union(*(_from_roles(r) for r in emb["ingress"])) == {"api", "worker"}


def test_frontend_policy_only_with_frontend(wl_records: dict[str, Record], wl_record_of: Any) -> None:
    assert "allow-frontend" in _policies(wl_records["prod"], "visionrag")  # every tier runs the frontend
    r = wl_record_of("dev", {"visionrag:workloads": {"frontend": None}})
    assert "allow-frontend" not in _policies(r, "visionrag")
