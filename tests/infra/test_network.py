"""Network: AZ spread, NAT layout per tier, no public IPs, locked default SG, flow logs, private API endpoints."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from infra.network import INTERFACE_ENDPOINTS, Network, NetworkArgs, subnet_layout
from stacks.config import ConfigError, StackConfig
from stacks.engine.offline import Record, RecordedResource, run_stack

STACKS = ("dev", "staging", "prod")
SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
EXPECTED = {"dev": (2, 1), "staging": (3, 3), "prod": (3, 3)}  # (AZs, NAT gateways) from the tiers table


def _network(record: Record) -> RecordedResource:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Network"]
    return component


def _children(record: Record, type_: str) -> list[RecordedResource]:
    parent = _network(record).urn
    return [r for r in record.of_type(type_) if r.parent == parent]


def _subnets(record: Record, tier: str) -> list[RecordedResource]:
    # Registration order is not deterministic (applies resolve concurrently): order by name, i.e. by AZ index.
    found = [s for s in _children(record, SUBNET) if s.inputs["tags"]["subnet-tier"] == tier]
    return sorted(found, key=lambda s: s.name)


def _vpc_id(record: Record) -> str:
    (vpc,) = _children(record, "aws:ec2/vpc:Vpc")
    return str(vpc.outputs["id"])


@pytest.mark.parametrize("stack", STACKS)
def test_four_subnet_tiers_across_the_tiers_az_count(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    azs, _ = EXPECTED[stack]
    assert record.config.network.az_count == azs
    vpc_id = _vpc_id(record)
    for tier in ("public", "private", "intra", "control"):
        subnets = _subnets(record, tier)
        assert len(subnets) == azs, tier
        assert len({s.inputs["availabilityZone"] for s in subnets}) == azs, f"{tier} subnets share an AZ"
        assert all(s.inputs["vpcId"] == vpc_id for s in subnets)
    all_subnets = _children(record, SUBNET)
    # No subnet hands out public addresses: the ALB and the NAT gateways get theirs explicitly.
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in all_subnets)
    networks = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in all_subnets]
    vpc_net = ipaddress.IPv4Network(record.config.network.vpc_cidr)
    assert all(n.subnet_of(vpc_net) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])


@pytest.mark.parametrize("stack", STACKS)
def test_elb_role_tags_let_the_load_balancer_controller_find_subnets(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    assert all(s.inputs["tags"].get("kubernetes.io/role/elb") == "1" for s in _subnets(record, "public"))
    assert all(s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1" for s in _subnets(record, "private"))
    for s in _subnets(record, "private") + _subnets(record, "intra"):
        assert "kubernetes.io/role/elb" not in s.inputs["tags"], "an internet-facing LB could land in a private subnet"


@pytest.mark.parametrize("stack", STACKS)
def test_nat_layout_follows_the_tier(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    azs, nat_count = EXPECTED[stack]
    nats = _children(record, NAT)
    assert len(nats) == nat_count
    public_ids = {s.outputs["id"] for s in _subnets(record, "public")}
    assert all(n.inputs["subnetId"] in public_ids for n in nats)
    private_rts = [rt for rt in _children(record, ROUTE_TABLE) if rt.name.startswith("network-private-rt-")]
    assert len(private_rts) == azs
    used = [rt.inputs["routes"][0]["natGatewayId"] for rt in private_rts]
    assert all(rt.inputs["routes"][0]["cidrBlock"] == "0.0.0.0/0" for rt in private_rts)
    assert set(used) == {n.outputs["id"] for n in nats}
    # perAz: every AZ has its own egress, so one AZ's failure leaves the others' egress intact.
    assert len(set(used)) == (azs if stack != "dev" else 1)


def test_dev_and_prod_differ_exactly_in_az_and_nat_counts(records: dict[str, Record]) -> None:
    dev, prod = records["dev"], records["prod"]
    assert (len(_children(dev, SUBNET)), len(_children(dev, NAT))) == (8, 1)
    assert (len(_children(prod, SUBNET)), len(_children(prod, NAT))) == (12, 3)
    assert dev.config.network.nat_gateways == "single" and prod.config.network.nat_gateways == "perAz"


@pytest.mark.parametrize("stack", STACKS)
def test_public_routes_to_igw_and_intra_has_no_internet_route(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    rts = {rt.name: rt for rt in _children(record, ROUTE_TABLE)}
    (igw,) = _children(record, "aws:ec2/internetGateway:InternetGateway")
    assert rts["network-public-rt"].inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw.outputs["id"]}]
    assert rts["network-intra-rt"].inputs["routes"] == []
    associations = _children(record, "aws:ec2/routeTableAssociation:RouteTableAssociation")
    intra_rt_id = rts["network-intra-rt"].outputs["id"]
    intra_ids = {s.outputs["id"] for s in _subnets(record, "intra")}
    assert {a.inputs["subnetId"] for a in associations if a.inputs["routeTableId"] == intra_rt_id} == intra_ids
    # Every subnet is associated exactly once (none falls back to the main route table).
    assert sorted(a.inputs["subnetId"] for a in associations) == sorted(
        s.outputs["id"] for s in _children(record, SUBNET)
    )


@pytest.mark.parametrize("stack", STACKS)
def test_default_security_group_is_locked(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (default_sg,) = _children(record, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs["vpcId"] == _vpc_id(record)
    assert default_sg.inputs["ingress"] == [] and default_sg.inputs["egress"] == []


@pytest.mark.parametrize("stack", STACKS)
def test_flow_logs_capture_all_traffic_into_an_encrypted_retained_group(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (flow_log,) = _children(record, "aws:ec2/flowLog:FlowLog")
    (group,) = _children(record, "aws:cloudwatch/logGroup:LogGroup")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["vpcId"] == _vpc_id(record)
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == record.config.network.flow_log_retention_days
    assert group.inputs["kmsKeyId"] == record.one("aws:kms/key:Key", "keys-logs").outputs["arn"]

    (role,) = _children(record, "aws:iam/role:Role")
    assert flow_log.inputs["iamRoleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (policy,) = _children(record, "aws:iam/rolePolicy:RolePolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    arn = group.outputs["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"], "the flow-logs role may write to its own group only"
    assert all(a.startswith("logs:") and "*" not in a for a in statement["Action"])


def test_flow_log_retention_differs_per_tier(records: dict[str, Record]) -> None:
    retention = {
        s: _children(records[s], "aws:cloudwatch/logGroup:LogGroup")[0].inputs["retentionInDays"] for s in STACKS
    }
    assert retention == {"dev": 14, "staging": 90, "prod": 365}


@pytest.mark.parametrize("stack", STACKS)
def test_aws_api_endpoints_are_private(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    endpoints = {e.inputs["serviceName"]: e for e in _children(record, ENDPOINT)}
    s3 = endpoints.pop("com.amazonaws.us-east-1.s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    # Not the control tier's table either: control-plane and scraper ENIs never read S3.
    rts = [rt for rt in _children(record, ROUTE_TABLE) if rt.name not in ("network-public-rt", "network-control-rt")]
    assert sorted(s3.inputs["routeTableIds"]) == sorted(rt.outputs["id"] for rt in rts)

    # The stack config chooses which (tiers.py: dev none, NAT carries that traffic; staging/prod all).
    assert set(endpoints) == {f"com.amazonaws.us-east-1.{svc}" for svc in record.config.network.interface_endpoints}
    assert set(record.config.network.interface_endpoints) == (set() if stack == "dev" else set(INTERFACE_ENDPOINTS))
    (sg,) = _children(record, "aws:ec2/securityGroup:SecurityGroup")
    private_ids = sorted(s.outputs["id"] for s in _subnets(record, "private"))
    for endpoint in endpoints.values():
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids
        assert endpoint.inputs["securityGroupIds"] == [sg.outputs["id"]]
    ingress: list[dict[str, Any]] = sg.inputs["ingress"]
    assert ingress == [
        {
            "description": "HTTPS from the VPC",
            "protocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "cidrBlocks": [record.config.network.vpc_cidr],
        }
    ]
    assert sg.inputs["egress"] == []


def test_network_attributes_engineers_code_against(records: dict[str, Record]) -> None:
    record = records["prod"]
    assert record.outputs["vpcId"] == _vpc_id(record)
    assert record.outputs["privateSubnetIds"] == [s.outputs["id"] for s in _subnets(record, "private")]


def test_subnet_layout_is_deterministic_and_disjoint() -> None:
    layout = subnet_layout("10.40.0.0/16", 3)
    assert layout == {
        "private": ["10.40.0.0/18", "10.40.64.0/18", "10.40.128.0/18"],
        "public": ["10.40.192.0/21", "10.40.200.0/21", "10.40.208.0/21"],
        "intra": ["10.40.224.0/21", "10.40.232.0/21", "10.40.240.0/21"],
        "control": ["10.40.216.0/23", "10.40.218.0/23", "10.40.220.0/23"],
    }
    small = subnet_layout("172.16.0.0/20", 2)
    assert small["private"] == ["172.16.0.0/22", "172.16.4.0/22"] and small["intra"][1] == "172.16.14.128/25"
    assert small["control"] == ["172.16.13.128/27", "172.16.13.160/27"]  # EKS wants at least /28


_GOOD: dict[str, Any] = {
    "name_prefix": "visionrag-dev",
    "region": "us-east-1",
    "vpc_cidr": "10.40.0.0/16",
    "az_count": 2,
    "nat_gateways": "single",
    "flow_log_retention_days": 14,
    "logs_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vpc_cidr", "8.8.0.0/16"),
        ("vpc_cidr", "10.40.0.0/24"),
        ("vpc_cidr", "10.40.0.1/16"),
        ("az_count", 4),
        ("az_count", 1),
        ("nat_gateways", "none"),
        ("flow_log_retention_days", 10),
        ("region", "mars-1"),
        ("name_prefix", "-bad"),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, value: Any) -> None:
    def program(cfg: StackConfig) -> None:
        Network("network", NetworkArgs(**{**_GOOD, field: value}))

    with pytest.raises(ValueError, match=rf"^{field}: .*{value!s}"):
        run_stack("dev", program=program)


def test_valid_args_build() -> None:
    def program(cfg: StackConfig) -> None:
        Network("network", NetworkArgs(**_GOOD))

    record = run_stack("dev", program=program)
    assert len(record.of_type(SUBNET)) == 8


@pytest.mark.parametrize(
    ("override", "key", "shown"),
    [
        ({"flowLogRetentionDays": 10}, "network.flowLogRetentionDays", "allowed: [1, 3, 5"),
        ({"vpcCidr": "10.0.0.0/8"}, "network.vpcCidr", "between /16 and /20"),
        ({"vpcCidr": "8.8.0.0/16"}, "network.vpcCidr", "private IPv4"),
        ({"vpcCidr": "10.40.0.1/16"}, "network.vpcCidr", "not a network address"),
        ({"azCount": 4}, "network.azCount", "4"),
        ({"natGateways": "none"}, "network.natGateways", "'single' or 'perAz'"),
    ],
)
def test_config_refuses_a_bad_network_naming_the_key(override: dict[str, Any], key: str, shown: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_stack("dev", overrides={"visionrag:network": override})
    assert f"visionrag:{key}:" in str(err.value) and shown in str(err.value)


def test_interface_endpoints_must_be_known_services() -> None:
    from infra.network import _validate

    def args(endpoints: tuple[str, ...]) -> NetworkArgs:
        return NetworkArgs(name_prefix="visionrag-dev", region="us-east-1", vpc_cidr="10.40.0.0/16", az_count=2,
                           nat_gateways="single", flow_log_retention_days=14, logs_key_arn="arn",
                           interface_endpoints=endpoints)  # fmt: skip

    _validate(args(()))
    for bad in (("ecr.api", "s3"), ("sts", "sts")):
        with pytest.raises(ValueError, match=r"interface_endpoints: .* must list distinct services from"):
            _validate(args(bad))
