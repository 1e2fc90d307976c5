"""Edge: the public entry point. ACM certificate, internet-facing ALB, listeners, target groups, WAF, DNS.

Routing is host-based: `https://<api_subdomain>.<domain>` goes to the api target group (or, with a canary, is
split by weight between `api` and `api-canary`), `https://<domain>` goes to the frontend (when one is deployed;
otherwise the ALB answers a fixed 404 naming the API host), any other Host gets a 404 from the ALB itself.
Host-based (not `/api/*`) because the API keeps the template's root paths (`/search`, `/index`, ...) and needs
no path rewriting. Plain HTTP only ever answers with a 301 to HTTPS.

Security groups: the ALB accepts 443/80 from anywhere and may only talk to the nodes' security group on the
target ports; the nodes accept those ports from the ALB's group only.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.cdn import ORIGIN_VERIFY_HEADER
from infra.dns_validation import option_for, validation_record
from infra.options import depends_on_of
from infra.sg_rules import allow_tcp_between
from infra.waf import WebFirewall, WebFirewallArgs, upload_routes
from infra.workloads.frontend import HEALTH_PATH as FRONTEND_HEALTH_PATH

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
API_PORT = 8000
FRONTEND_PORT = 3000
# target group key -> (port, health check path)
TARGETS: dict[str, tuple[int, str]] = {
    "api": (API_PORT, "/health"),
    "api-canary": (API_PORT, "/health"),
    # The frontend's unauthenticated health route: "/" redirects an anonymous request to sign-in (never 200).
    "frontend": (FRONTEND_PORT, FRONTEND_HEALTH_PATH),
}
INTERNET_CIDRS = ("0.0.0.0/0", "::/0")
_ELB_NAME_MAX = 32  # ALB and target group names
# A lower-case DNS name (the stack domain); stacks/config/edge.py validates edge.domain with it.
HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # api_subdomain

HSTS = "max-age=63072000; includeSubDomains"
# No Content-Security-Policy here: ALB response-header attributes apply per listener, i.e. to both hosts, and the
# CSP each host needs comes from its app: the frontend's per-request nonce policy (frontend/src/middleware.ts)
# and the API's deny-all policy for JSON (app/api/middleware.py SecurityHeadersMiddleware). A listener CSP would
# replace or intersect the frontend's nonce policy (policies/rules/edge.py refuses one).


@dataclass(frozen=True, kw_only=True)
class EdgeArgs:
    name_prefix: str  # "<prefix>-<tier>": ALB and target group names derive from it (ELB's 32-character limit)
    domain: str
    api_subdomain: str
    hosted_zone_id: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    node_security_group_id: pulumi.Input[str]
    access_logs_bucket: pulumi.Input[str]
    access_log_prefix: str
    deletion_protection: bool
    waf_rate_limit: int
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    # Whether a frontend workload serves the apex. False: the apex answers a fixed 404 naming the API host instead
    # of forwarding to a target group with no targets (a 503 for every visitor). The target group exists either
    # way, so deploying the frontend later only flips this switch.
    frontend_enabled: bool
    # None: all api traffic to "api". 0-100: that share of api requests goes to "api-canary".
    canary_weight: int | None = None
    # Set when CloudFront (infra/cdn.py) fronts the apex: the apex rule then forwards only requests carrying
    # `X-Origin-Verify: <this secret>` (the origin header CloudFront adds), anything else falls to the 404
    # default, and the apex DNS record is CloudFront's (created by the Cdn component), not the ALB's.
    app_origin_verify: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: EdgeArgs) -> None:
    for key in TARGETS:
        tg = f"{args.name_prefix}-{key}"
        if len(tg) > _ELB_NAME_MAX:
            raise ValueError(f"name_prefix: {args.name_prefix!r} makes target group name {tg!r} exceed 32 characters")
    if not HOST.match(args.domain):
        raise ValueError(f"domain: {args.domain!r} is not a valid lower-case DNS name")
    if not DNS_LABEL.match(args.api_subdomain):
        raise ValueError(f"api_subdomain: {args.api_subdomain!r} is not a DNS label")
    if args.canary_weight is not None and not 0 <= args.canary_weight <= 100:
        raise ValueError(f"canary_weight: {args.canary_weight} must be between 0 and 100")
    if len(args.public_subnet_ids) < 2:
        raise ValueError("public_subnet_ids: an ALB needs subnets in at least two AZs")
    if (
        args.access_log_prefix.startswith("/")
        or args.access_log_prefix.endswith("/")
        or "AWSLogs" in args.access_log_prefix
    ):
        raise ValueError(
            f"access_log_prefix: {args.access_log_prefix!r} must not start/end with '/' or contain AWSLogs"
        )


def _apex_action(
    frontend_enabled: bool, frontend_tg_arn: pulumi.Input[str], api_host: str
) -> aws.lb.ListenerRuleActionArgs:
    if frontend_enabled:
        return aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=frontend_tg_arn)
    return aws.lb.ListenerRuleActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerRuleActionFixedResponseArgs(
            content_type="application/json",
            message_body=f'{{"detail":"No frontend is deployed here; the API is https://{api_host}"}}',
            status_code="404",
        ),
    )


def _origin_verify_condition(secret: pulumi.Input[str] | None) -> list[aws.lb.ListenerRuleConditionArgs]:
    if secret is None:
        return []
    return [
        aws.lb.ListenerRuleConditionArgs(
            http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                http_header_name=ORIGIN_VERIFY_HEADER, values=[secret]
            )
        )
    ]


class Edge(pulumi.ComponentResource):
    certificate: aws.acm.Certificate
    alb: aws.lb.LoadBalancer
    https_listener: aws.lb.Listener
    http_listener: aws.lb.Listener
    target_groups: dict[str, aws.lb.TargetGroup]
    waf: WebFirewall
    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    alb_zone_id: pulumi.Output[str]
    alb_security_group_id: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]
    target_group_arn_suffixes: dict[str, pulumi.Output[str]]
    api_host: str
    app_host: str

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.app_host = args.domain
        self.api_host = f"{args.api_subdomain}.{args.domain}"

        # --- TLS certificate, DNS-validated in our own zone -----------------------------------------------
        self.certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=self.app_host,
            subject_alternative_names=[self.api_host],
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["subjectAlternativeNames"]),
        )
        fqdns = []
        for label, host in (("app", self.app_host), ("api", self.api_host)):
            option = self.certificate.domain_validation_options.apply(functools.partial(option_for, host))
            record = validation_record(
                f"{name}-cert-validation-{label}", zone_id=args.hosted_zone_id, option=option, opts=child
            )
            fqdns.append(record.fqdn)
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=fqdns,
            opts=child,
        )

        # --- security groups ------------------------------------------------------------------------------
        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            name=f"{args.name_prefix}-alb",
            description="Internet-facing ALB: 443/80 in from anywhere, out to the nodes' target ports only",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        for port in (443, 80):
            for cidr in INTERNET_CIDRS:
                v6 = ipaddress.ip_network(cidr).version == 6
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-in-{port}-{'v6' if v6 else 'v4'}",
                    security_group_id=alb_sg.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=None if v6 else cidr,
                    cidr_ipv6=cidr if v6 else None,
                    description=f"HTTP{'S' if port == 443 else ' (redirect only)'} from the internet",
                    tags=tags,
                    opts=child,
                )
        for port in sorted({p for p, _ in TARGETS.values()}):
            allow_tcp_between(
                egress_name=f"{name}-alb-out-{port}",
                ingress_name=f"{name}-nodes-in-{port}",
                source_sg_id=alb_sg.id,
                target_sg_id=args.node_security_group_id,
                port=port,
                egress_description=f"to pod targets on {port}",
                ingress_description=f"ALB to pod targets on {port}",
                tags=tags,
                opts=child,
            )
        self.alb_security_group_id = alb_sg.id

        # --- load balancer --------------------------------------------------------------------------------
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=args.name_prefix,
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[alb_sg.id],
            # Malformed header names are a request-smuggling vector; the ALB drops them before any target.
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            enable_http2=True,
            enable_deletion_protection=args.deletion_protection,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=args.access_logs_bucket, prefix=args.access_log_prefix, enabled=True
            ),
            idle_timeout=120,  # SSE progress streams stay open between events
            tags=tags,
            # The ALB checks on creation that it may write to the log bucket: the component's depends_on (the
            # bucket and its policy) must hold for the ALB itself.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on_of(opts)),
        )

        self.target_groups = {}
        for key, (port, path) in TARGETS.items():
            self.target_groups[key] = aws.lb.TargetGroup(
                f"{name}-tg-{key}",
                name=f"{args.name_prefix}-{key}",
                port=port,
                protocol="HTTP",
                target_type="ip",  # pods are registered directly (VPC CNI addresses), no NodePort hop
                vpc_id=args.vpc_id,
                deregistration_delay=30,
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True,
                    path=path,
                    protocol="HTTP",
                    port="traffic-port",
                    matcher="200",
                    interval=15,
                    timeout=5,
                    healthy_threshold=2,
                    unhealthy_threshold=3,
                ),
                tags=tags,
                opts=child,
            )

        # --- listeners ------------------------------------------------------------------------------------
        self.http_listener = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
            tags=tags,
            opts=child,
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=validation.certificate_arn,
            # Security headers added by the ALB to every response of both hosts, whatever the target sends (or
            # forgets); host-independent ones only: the CSP is each app's (see the note at HSTS).
            routing_http_response_strict_transport_security_header_value=HSTS,
            routing_http_response_x_content_type_options_header_value="nosniff",
            routing_http_response_x_frame_options_header_value="DENY",
            routing_http_response_server_enabled=False,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="fixed-response",
                    fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                        content_type="application/json", message_body='{"detail":"Not Found"}', status_code="404"
                    ),
                )
            ],
            tags=tags,
            opts=child,
        )

        tg_arns = {k: tg.arn for k, tg in self.target_groups.items()}
        if args.canary_weight is None:
            api_forward = aws.lb.ListenerRuleActionForwardArgs(
                target_groups=[aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=tg_arns["api"], weight=100)]
            )
        else:
            api_forward = aws.lb.ListenerRuleActionForwardArgs(
                target_groups=[
                    aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                        arn=tg_arns["api"], weight=100 - args.canary_weight
                    ),
                    aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                        arn=tg_arns["api-canary"], weight=args.canary_weight
                    ),
                ],
                # A client stays on the version it first hit for the window, so one session never flips versions.
                stickiness=aws.lb.ListenerRuleActionForwardStickinessArgs(enabled=True, duration=600),
            )
        aws.lb.ListenerRule(
            f"{name}-rule-api",
            listener_arn=self.https_listener.arn,
            priority=10,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[self.api_host])
                )
            ],
            actions=[aws.lb.ListenerRuleActionArgs(type="forward", forward=api_forward)],
            tags=tags,
            opts=child,
        )
        aws.lb.ListenerRule(
            f"{name}-rule-frontend",
            listener_arn=self.https_listener.arn,
            priority=20,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[self.app_host])
                ),
                *_origin_verify_condition(args.app_origin_verify),
            ],
            actions=[_apex_action(args.frontend_enabled, tg_arns["frontend"], self.api_host)],
            tags=tags,
            opts=child,
        )

        # --- DNS: both hosts alias the ALB ----------------------------------------------------------------
        # (The apex aliases CloudFront instead when it fronts the apex: the Cdn component owns that record.)
        aliased = [("api", self.api_host)] + ([("app", self.app_host)] if args.app_origin_verify is None else [])
        for label, host in aliased:
            aws.route53.Record(
                f"{name}-dns-{label}",
                zone_id=args.hosted_zone_id,
                name=host,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.alb.dns_name, zone_id=self.alb.zone_id, evaluate_target_health=True
                    )
                ],
                opts=child,
            )

        self.waf = WebFirewall(
            f"{name}-waf",
            WebFirewallArgs(
                acl_name=args.name_prefix,
                resource_arn=self.alb.arn,
                rate_limit=args.waf_rate_limit,
                logs_key_arn=args.logs_key_arn,
                log_retention_days=args.log_retention_days,
                # The ALB serves both hosts: the API's own upload route and the frontend's proxy on the apex.
                upload_routes=upload_routes(app_host=self.app_host, api_host=self.api_host),
                tags=tags,
            ),
            opts=child,
        )

        self.alb_arn = self.alb.arn
        self.alb_arn_suffix = self.alb.arn_suffix
        self.alb_dns_name = self.alb.dns_name
        self.alb_zone_id = self.alb.zone_id
        self.target_group_arns = tg_arns
        self.target_group_arn_suffixes = {k: tg.arn_suffix for k, tg in self.target_groups.items()}
        self.register_outputs(
            {
                "alb_arn": self.alb_arn,
                "alb_dns_name": self.alb_dns_name,
                "alb_security_group_id": self.alb_security_group_id,
                "target_group_arns": self.target_group_arns,
                "certificate_arn": self.certificate.arn,
                "web_acl_arn": self.waf.web_acl_arn,
            }
        )
