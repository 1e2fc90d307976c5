"""Network: the VPC, its four subnet tiers per AZ, egress, flow logs and the private AWS API endpoints.

Subnet tiers: `public` (ALB and NAT gateways only), `private` (nodes and pods; egress through NAT), `intra` (no
route to the internet at all: ElastiCache and anything that must never reach out), `control` (no route to the
internet; the EKS control plane's cross-account ENIs and the managed Prometheus scraper's ENIs, nothing else).

`control` exists so that Kubernetes NetworkPolicies can name the control plane and the scraper by CIDR: with the
VPC CNI every pod takes an address from the `private` subnets, so an ipBlock covering them admits every pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws

from infra.naming import LOG_RETENTION_DAYS, check_name_prefix, check_region
from infra.policy_document import policy_document

NatLayout = Literal["single", "perAz"]
# Interface endpoints keep the AWS API traffic of nodes and pods off the NAT gateways and the internet: image
# pulls (ecr.api, ecr.dkr + the S3 gateway for layers), IRSA token exchange (sts), envelope encryption (kms),
# log shipping (logs), secrets (secretsmanager) and the node bootstrap/VPC CNI calls (ec2).
INTERFACE_ENDPOINTS: tuple[str, ...] = ("ecr.api", "ecr.dkr", "sts", "kms", "logs", "secretsmanager", "ec2")
HTTPS = 443


def subnet_layout(vpc_cidr: str, az_count: int) -> dict[str, list[str]]:
    """Deterministic CIDRs per tier: private subnets get a quarter of the VPC each (the VPC CNI gives every pod
    a VPC address), public and intra share the last quarter in eighths, and the control subnets split the eighth
    between them in four (a /23 of a /16 VPC, a /27 of a /20: EKS asks for at least a /28 per cluster subnet).

    Pure and config-derived, so callers (NetworkPolicy ipBlocks, TRUSTED_PROXIES) know every CIDR at preview."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    small = list(quarters[3].subnets(prefixlen_diff=3))
    control = list(small[3].subnets(prefixlen_diff=2))
    return {
        "private": [str(quarters[i]) for i in range(az_count)],
        "public": [str(small[i]) for i in range(az_count)],
        "intra": [str(small[4 + i]) for i in range(az_count)],
        "control": [str(control[i]) for i in range(az_count)],
    }


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    name_prefix: str  # "<prefix>-<tier>"
    region: str
    vpc_cidr: str
    az_count: int
    nat_gateways: NatLayout
    flow_log_retention_days: int
    logs_key_arn: pulumi.Input[str]
    # Which of INTERFACE_ENDPOINTS to create (each costs per AZ-hour); the rest of the AWS API traffic takes NAT.
    interface_endpoints: Sequence[str] = INTERFACE_ENDPOINTS
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: NetworkArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    check_region("region", args.region)
    try:
        net = ipaddress.ip_network(args.vpc_cidr, strict=True)
    except ValueError as err:
        raise ValueError(f"vpc_cidr: {args.vpc_cidr!r} is not a network address ({err})") from None
    if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 20:
        raise ValueError(f"vpc_cidr: {args.vpc_cidr!r} must be a private IPv4 network between /16 and /20")
    if args.az_count not in (2, 3):
        raise ValueError(f"az_count: {args.az_count!r} must be 2 or 3")
    if args.nat_gateways not in get_args(NatLayout):
        raise ValueError(f"nat_gateways: {args.nat_gateways!r} must be one of {', '.join(get_args(NatLayout))}")
    if args.flow_log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"flow_log_retention_days: {args.flow_log_retention_days!r} is not a CloudWatch Logs retention; "
            f"allowed: {sorted(LOG_RETENTION_DAYS)}"
        )
    unknown = sorted(set(args.interface_endpoints) - set(INTERFACE_ENDPOINTS))
    if unknown or len(set(args.interface_endpoints)) != len(args.interface_endpoints):
        raise ValueError(
            f"interface_endpoints: {list(args.interface_endpoints)} must list distinct services from "
            f"{list(INTERFACE_ENDPOINTS)}"
        )


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    intra_subnet_ids: list[pulumi.Output[str]]
    control_subnet_ids: list[pulumi.Output[str]]
    # Config-derived CIDRs per tier (subnet_layout), known at preview.
    subnet_cidrs: dict[str, list[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    nat_gateway_ids: list[pulumi.Output[str]]
    endpoints_security_group_id: pulumi.Output[str]
    flow_log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        prefix = args.name_prefix

        def tags(resource: str, **extra: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{prefix}-{resource}", **extra}

        # Only zones that need no opt-in: Local/Wavelength zones lack NAT gateways and most instance types.
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=invoke_opts,
        )

        def pick(i: int) -> pulumi.Output[str]:
            def choose(names: list[str]) -> str:
                if len(names) < args.az_count:
                    raise ValueError(f"az_count: {args.az_count} AZs requested, region offers only {names}")
                return sorted(names)[i]

            return zones.names.apply(choose)

        self.availability_zones = [pick(i) for i in range(args.az_count)]
        layout = subnet_layout(args.vpc_cidr, args.az_count)

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # Private DNS of the interface endpoints and EKS node registration both need DNS on the VPC.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            instance_tenancy="default",
            tags=tags("vpc"),
            opts=child,
        )
        self.vpc_id = self.vpc.id
        self.vpc_cidr = args.vpc_cidr

        # The default security group is what anything launched without an explicit group lands in: adopting it
        # with no rules means such a resource can neither receive nor send anything.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=tags("default-locked"),
            opts=child,
        )

        subnets: dict[str, list[aws.ec2.Subnet]] = {"public": [], "private": [], "intra": [], "control": []}
        role_tags = {
            "public": {"kubernetes.io/role/elb": "1"},
            "private": {"kubernetes.io/role/internal-elb": "1"},
            "intra": {},
            "control": {},
        }
        for tier in ("public", "private", "intra", "control"):
            for i, az in enumerate(self.availability_zones):
                subnets[tier].append(
                    aws.ec2.Subnet(
                        f"{name}-{tier}-{i}",
                        vpc_id=self.vpc.id,
                        cidr_block=layout[tier][i],
                        availability_zone=az,
                        # Even public subnets: the ALB and NAT gateways get their addresses explicitly, and
                        # nothing else should ever be reachable from the internet by accident.
                        map_public_ip_on_launch=False,
                        tags=tags(f"{tier}-{i}", **{"subnet-tier": tier}, **role_tags[tier]),
                        opts=child,
                    )
                )
        self.public_subnet_ids = [s.id for s in subnets["public"]]
        self.private_subnet_ids = [s.id for s in subnets["private"]]
        self.intra_subnet_ids = [s.id for s in subnets["intra"]]
        self.control_subnet_ids = [s.id for s in subnets["control"]]
        self.subnet_cidrs = layout

        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=tags("public-rt"),
            opts=child,
        )
        for i, subnet in enumerate(subnets["public"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=child
            )

        nat_count = args.az_count if args.nat_gateways == "perAz" else 1
        nats: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-eip-{i}", domain="vpc", tags=tags(f"nat-eip-{i}"), opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.allocation_id,
                    subnet_id=subnets["public"][i].id,
                    connectivity_type="public",
                    tags=tags(f"nat-{i}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        self.nat_gateway_ids = [n.id for n in nats]

        private_rts: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(subnets["private"]):
            # perAz: each AZ egresses through its own NAT so one AZ's outage leaves the others' egress intact.
            nat = nats[i] if args.nat_gateways == "perAz" else nats[0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=tags(f"private-rt-{i}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            private_rts.append(rt)
        self.private_route_table_ids = [rt.id for rt in private_rts]

        # Intra: only the implicit local route, no path to or from the internet.
        intra_rt = aws.ec2.RouteTable(
            f"{name}-intra-rt", vpc_id=self.vpc.id, routes=[], tags=tags("intra-rt"), opts=child
        )
        for i, subnet in enumerate(subnets["intra"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-intra-rta-{i}", subnet_id=subnet.id, route_table_id=intra_rt.id, opts=child
            )
        # Control: local route only as well; the control plane and the scraper only talk inside the VPC.
        control_rt = aws.ec2.RouteTable(
            f"{name}-control-rt", vpc_id=self.vpc.id, routes=[], tags=tags("control-rt"), opts=child
        )
        for i, subnet in enumerate(subnets["control"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-control-rta-{i}", subnet_id=subnet.id, route_table_id=control_rt.id, opts=child
            )

        self._flow_logs(name, args, child, invoke_opts)

        # ---- private AWS API endpoints ---------------------------------------------------------------------
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[*self.private_route_table_ids, intra_rt.id],
            tags=tags("s3-endpoint"),
            opts=child,
        )
        endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            name=f"{prefix}-vpc-endpoints",
            description="HTTPS from inside the VPC to the AWS API interface endpoints",
            vpc_id=self.vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the VPC",
                    "protocol": "tcp",
                    "from_port": HTTPS,
                    "to_port": HTTPS,
                    "cidr_blocks": [args.vpc_cidr],
                }
            ],
            # Endpoint ENIs only answer (stateful); they never open connections.
            egress=[],
            revoke_rules_on_delete=True,
            tags=tags("vpc-endpoints"),
            opts=child,
        )
        self.endpoints_security_group_id = endpoints_sg.id
        for service in args.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.private_subnet_ids,
                security_group_ids=[endpoints_sg.id],
                tags=tags(f"{service.replace('.', '-')}-endpoint"),
                opts=child,
            )

        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "intra_subnet_ids": self.intra_subnet_ids,
                "control_subnet_ids": self.control_subnet_ids,
                "subnet_cidrs": self.subnet_cidrs,
                "endpoints_security_group_id": self.endpoints_security_group_id,
                "flow_log_group_name": self.flow_log_group_name,
            }
        )

    def _flow_logs(
        self,
        name: str,
        args: NetworkArgs,
        child: pulumi.ResourceOptions,
        invoke_opts: pulumi.InvokeOutputOptions,
    ) -> None:
        prefix = args.name_prefix
        tag = {**args.tags}
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/aws/vpc/{prefix}/flow-logs",
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags={**tag, "Name": f"{prefix}-flow-logs"},
            opts=child,
        )
        self.flow_log_group_name = log_group.name
        assume = policy_document(
            [
                {
                    "effect": "Allow",
                    "actions": ["sts:AssumeRole"],
                    "principals": [{"type": "Service", "identifiers": ["vpc-flow-logs.amazonaws.com"]}],
                    # Confused-deputy guard: only flow logs of this account may use the role.
                    "conditions": [
                        {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [identity.account_id]}
                    ],
                }
            ],
            opts=invoke_opts,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            name=f"{prefix}-vpc-flow-logs",
            assume_role_policy=assume,
            tags={**tag, "Name": f"{prefix}-vpc-flow-logs"},
            opts=child,
        )
        write = policy_document(
            [
                {
                    "sid": "WriteFlowLogsToItsOwnGroupOnly",
                    "effect": "Allow",
                    "actions": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "resources": [log_group.arn, log_group.arn.apply(lambda a: f"{a}:*")],
                }
            ],
            opts=invoke_opts,
        )
        aws.iam.RolePolicy(f"{name}-flow-logs-policy", name="write-flow-logs", role=role.id, policy=write, opts=child)
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags={**tag, "Name": f"{prefix}-flow-log"},
            opts=child,
        )
