"""Traffic from outside the pod network is admitted by where it really comes from, never by "the VPC".

With the VPC CNI every pod takes an address from the node groups' subnets, so an ipBlock (or TRUSTED_PROXIES
entry) covering them admits every pod. These tests read the real program (the committed stacks): the subnets
each peer's ENIs are placed in, and the CIDRs the NetworkPolicies and the api believe.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from stacks.engine.offline import Record, RecordedResource
from tests.infra.workloads.graph import DEPLOYMENT, NETPOL, TGB, by_name, role_policy_for

STACKS = ("dev", "staging", "prod")
SUBNET = "aws:ec2/subnet:Subnet"
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _subnet_cidrs(record: Record, ids: list[str]) -> list[Net]:
    by_id = {s.outputs["id"]: s.inputs["cidrBlock"] for s in record.of_type(SUBNET)}
    return [ipaddress.ip_network(by_id[i]) for i in ids]


def _pod_subnets(record: Record) -> list[Net]:
    ids = {i for ng in record.of_type("aws:eks/nodeGroup:NodeGroup") for i in ng.inputs["subnetIds"]}
    return _subnet_cidrs(record, sorted(ids))


def _ingress_blocks(record: Record) -> list[tuple[str, Net, int]]:
    found = []
    for np in record.of_type(NETPOL):
        label = f"{np.inputs['metadata']['namespace']}/{np.inputs['metadata']['name']}"
        for rule in np.inputs["spec"].get("ingress") or []:
            for peer in rule.get("from") or []:
                if "ipBlock" in peer:
                    for port in rule["ports"]:
                        found.append((label, ipaddress.ip_network(peer["ipBlock"]["cidr"]), int(port["port"])))
    return found


def _env(deployment: RecordedResource) -> dict[str, Any]:
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("stack", STACKS)
def test_no_ingress_ipblock_holds_a_pod(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    pods = _pod_subnets(record)
    assert pods, "no node group subnets found"
    blocks = _ingress_blocks(record)
    assert blocks  # the ALB, scraper and control-plane rules exist
    leaks = [(np, str(net)) for np, net, _ in blocks if any(net.overlaps(p) for p in pods)]
    assert leaks == []


@pytest.mark.parametrize("stack", STACKS)
def test_each_source_is_the_subnets_its_enis_live_in(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    alb = next(iter(record.of_type("aws:lb/loadBalancer:LoadBalancer")))
    (eks,) = record.of_type("aws:eks/cluster:Cluster")
    (scraper,) = record.of_type("aws:amp/scraper:Scraper")
    alb_nets = set(_subnet_cidrs(record, alb.inputs["subnets"]))
    control_plane = set(_subnet_cidrs(record, eks.inputs["vpcConfig"]["subnetIds"]))
    scraper_nets = set(_subnet_cidrs(record, scraper.inputs["source"]["eks"]["subnetIds"]))
    by_port: dict[int, set[Net]] = {}
    for _, net, port in _ingress_blocks(record):
        by_port.setdefault(port, set()).add(net)
    assert by_port[8000] == alb_nets  # api: the ALB
    assert by_port[9090] == by_port[9091] == by_port[9400] == scraper_nets  # metrics: the scraper
    assert by_port[9443] == by_port[443] == control_plane  # add-on webhooks: the control plane
    assert not control_plane & set(_pod_subnets(record)) and not scraper_nets & set(_pod_subnets(record))


@pytest.mark.parametrize("stack", STACKS)
def test_trusted_proxies_are_the_alb_subnets_only(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    alb = next(iter(record.of_type("aws:lb/loadBalancer:LoadBalancer")))
    trusted = {ipaddress.ip_network(c) for c in _env(by_name(record, DEPLOYMENT, "api"))["TRUSTED_PROXIES"].split(",")}
    assert trusted == set(_subnet_cidrs(record, alb.inputs["subnets"]))
    assert not any(t.overlaps(p) for t in trusted for p in _pod_subnets(record))


# ---- the TargetGroupBinding / security group tag (issue 11 item 9) -----------------------------------------
def test_exactly_one_node_security_group_can_carry_the_cluster_tag(records: dict[str, Record]) -> None:
    """EKS tags its cluster SG `kubernetes.io/cluster/<name>`; our node SG must not, or the load balancer
    controller finds two tagged SGs on every pod ENI and refuses to reconcile."""
    record = records["prod"]
    (ng,) = [r for r in record.of_type("aws:eks/nodeGroup:NodeGroup") if not r.inputs.get("taints")]
    template = next(iter(record.of_type("aws:ec2/launchTemplate:LaunchTemplate")))
    sgs = {s.outputs["id"]: s for s in record.of_type("aws:ec2/securityGroup:SecurityGroup")}
    ours = [sgs[i] for i in template.inputs["vpcSecurityGroupIds"] if i in sgs]
    assert ours, "the node security group is attached through the launch template"
    assert ng.inputs["clusterName"]
    for sg in ours:
        assert not any(k.startswith("kubernetes.io/cluster/") for k in (sg.inputs.get("tags") or {})), sg.name


def test_bindings_leave_security_groups_to_pulumi(records: dict[str, Record]) -> None:
    record = records["prod"]
    bindings = record.of_type(TGB)
    assert bindings
    for b in bindings:
        assert "networking" not in b.inputs["spec"]
    # ...so the ALB -> node SG rules are declared for every bound port, and the controller writes no SG at all.
    ingress = record.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    alb_sg = next(s for s in record.of_type("aws:ec2/securityGroup:SecurityGroup") if "alb" in s.name)
    from_alb = {
        int(r.inputs["fromPort"]) for r in ingress if r.inputs.get("referencedSecurityGroupId") == alb_sg.outputs["id"]
    }
    assert {int(b.inputs["spec"]["serviceRef"]["port"]) for b in bindings} <= from_alb
    lbc = json.dumps(role_policy_for(record, "aws-load-balancer-controller"))
    assert "ec2:AuthorizeSecurityGroupIngress" not in lbc and "ec2:RevokeSecurityGroupIngress" not in lbc
