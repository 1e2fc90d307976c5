"""VPC: who may reach us from the internet, flow logs, the default security group, public IPs on launch."""

from __future__ import annotations

from pulumi_policy import Policy, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    knob,
    number,
    of_type,
    owner_of,
    peek,
    resource_policy,
    stack_policy,
    truthy,
)

VPC = "aws:ec2/vpc:Vpc"
SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SUBNET = "aws:ec2/subnet:Subnet"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
ANYWHERE = {"0.0.0.0/0", "::/0"}
_SG_NAME_KEYS = ("name",)


def _internet_facing_lb_sgs(resources: list[PolicyResource], sgs: list[PolicyResource]) -> set[str]:
    """URNs of security groups attached to an internet-facing application load balancer."""
    out: set[str] = set()
    for lb in of_type(resources, *LOAD_BALANCERS):
        if truthy(peek(lb.props, "internal")) or peek(lb.props, "loadBalancerType") not in (None, "application"):
            continue
        by_prop = (lb.property_dependencies or {}).get("securityGroups") or []
        refs = {str(r) for r in as_list(peek(lb.props, "securityGroups")) if r}
        dep_urns = {d.urn for d in by_prop} or {d.urn for d in lb.dependencies}
        for sg in sgs:
            named = refs & {sg.name, str(peek(sg.props, "name"))}
            if (by_prop and sg.urn in dep_urns) or (not by_prop and (named or (not refs and sg.urn in dep_urns))):
                out.add(sg.urn)
    return out


def _ports(rule, from_key: str, to_key: str, proto_key: str) -> tuple[str, float | None, float | None]:
    proto = str(get(rule, proto_key) or "").lower()
    return proto, number(get(rule, from_key)), number(get(rule, to_key))


def _allowed(proto: str, lo: float | None, hi: float | None, ports: list[int]) -> bool:
    return proto in ("tcp", "6") and lo is not None and lo == hi and int(lo) in ports


def _public_ingress(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    sgs = of_type(resources, SG)
    alb_sgs = _internet_facing_lb_sgs(resources, sgs)
    ports = [int(p) for p in knob(args, "allowedPublicPorts", [80, 443])]

    def judge(where: str, urn: str, owner: PolicyResource | None, cidrs: set[str], rule_ports) -> None:
        public = cidrs & ANYWHERE
        if not public:
            return
        proto, lo, hi = rule_ports
        span = "all ports" if proto in ("-1", "all") else f"{proto} {lo:g}-{hi:g}" if lo is not None else proto
        if owner is not None and owner.urn in alb_sgs and _allowed(proto, lo, hi, ports):
            return
        who = f"security group {owner.name}" if owner is not None else "an unresolved security group"
        if owner is not None and owner.urn in alb_sgs:
            report(f"{where}: {who} (the ALB's) opens {span} to {sorted(public)}; only tcp {ports} may be", urn)
        else:
            report(f"{where}: {who} opens {span} to {sorted(public)}; only the ALB may face the internet", urn)

    for sg in sgs + of_type(resources, DEFAULT_SG):
        for i, rule in enumerate(as_list(get(sg.props, "ingress"))):
            cidrs = {str(c) for c in as_list(get(rule, "cidrBlocks")) + as_list(get(rule, "ipv6CidrBlocks"))}
            judge(f"{sg.name} ingress[{i}]", sg.urn, sg, cidrs, _ports(rule, "fromPort", "toPort", "protocol"))
    for rule in of_type(resources, INGRESS_RULE):
        owner = owner_of(rule, sgs, "securityGroupId", _SG_NAME_KEYS)
        cidrs = {str(c) for c in (get(rule.props, "cidrIpv4"), get(rule.props, "cidrIpv6")) if c}
        judge(rule.name, rule.urn, owner, cidrs, _ports(rule.props, "fromPort", "toPort", "ipProtocol"))
    for rule in of_type(resources, SG_RULE):
        if get(rule.props, "type") != "ingress":
            continue
        owner = owner_of(rule, sgs, "securityGroupId", _SG_NAME_KEYS)
        cidrs = {str(c) for c in as_list(get(rule.props, "cidrBlocks")) + as_list(get(rule.props, "ipv6CidrBlocks"))}
        judge(rule.name, rule.urn, owner, cidrs, _ports(rule.props, "fromPort", "toPort", "protocol"))


def _flow_logs(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    vpcs = of_type(resources, VPC)
    covered: dict[str, list[str]] = {}
    for fl in of_type(resources, FLOW_LOG):
        owner = owner_of(fl, vpcs, "vpcId", ())
        if owner is not None:
            covered.setdefault(owner.urn, []).append(str(get(fl.props, "trafficType")))
    required = knob(args, "trafficType", "ALL")
    for vpc in vpcs:
        kinds = covered.get(vpc.urn, [])
        if required not in kinds:
            report(f"VPC {vpc.name} has no flow log with trafficType {required} (found {kinds or 'none'})", vpc.urn)


def _default_sg(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    defaults = of_type(resources, DEFAULT_SG)
    for vpc in of_type(resources, VPC):
        mine = [d for d in defaults if owner_of(d, [vpc], "vpcId", ()) is not None]
        if not mine:
            report(f"VPC {vpc.name}: the default security group is not managed (its allow-all rules stay)", vpc.urn)
    for d in defaults:
        if as_list(get(d.props, "ingress")) or as_list(get(d.props, "egress")):
            report(f"default security group {d.name} has rules; it must have none", d.urn)


def _no_public_ip(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == SUBNET and truthy(get(args.props, "mapPublicIpOnLaunch")):
        report("mapPublicIpOnLaunch is true: instances would get public IPs (NAT and the ALB need none)")


POLICIES: list[Policy] = [
    stack_policy(
        name="sg-no-public-ingress",
        description="No security group allows ingress from 0.0.0.0/0 or ::/0, except the internet-facing ALB's "
        "on tcp 80/443.",
        severity=Severity.CRITICAL,
        remediation="Reference the ALB's security group (or a VPC CIDR / prefix list) as the source instead of "
        "the internet.",
        validate=_public_ingress,
        schema=config_schema(
            {
                "allowedPublicPorts": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "default": [80, 443],
                }
            }
        ),
        tags=["network"],
    ),
    stack_policy(
        name="vpc-flow-logs",
        description="Every VPC has flow logs capturing ALL traffic.",
        severity=Severity.MEDIUM,
        remediation="Add aws.ec2.FlowLog(vpc_id=vpc.id, traffic_type='ALL', log_destination=<encrypted log group>).",
        validate=_flow_logs,
        schema=config_schema({"trafficType": {"enum": ["ALL", "REJECT", "ACCEPT"], "default": "ALL"}}),
        tags=["network", "audit"],
    ),
    stack_policy(
        name="vpc-default-sg-closed",
        description="Every VPC's default security group is managed and has no rules.",
        severity=Severity.MEDIUM,
        remediation="Add aws.ec2.DefaultSecurityGroup(vpc_id=vpc.id) with no ingress or egress.",
        validate=_default_sg,
        tags=["network"],
    ),
    resource_policy(
        name="subnet-no-public-ip",
        description="No subnet assigns public IPs on launch.",
        severity=Severity.HIGH,
        remediation="Set map_public_ip_on_launch=False; the ALB and NAT gateways get their own addresses.",
        validate=_no_public_ip,
        tags=["network"],
    ),
]
