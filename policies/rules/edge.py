"""The internet edge: ALB listeners (TLS policy, redirect-only HTTP), access logs, header hygiene, WAF,
deletion protection."""

from __future__ import annotations

from pulumi_policy import Policy, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    is_set,
    knob,
    of_type,
    peek,
    present,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
)

LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
TLS_POLICIES_DEFAULT = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
]
SECURITY_HEADERS = {
    "routingHttpResponseStrictTransportSecurityHeaderValue": "Strict-Transport-Security",
    "routingHttpResponseXContentTypeOptionsHeaderValue": "X-Content-Type-Options",
    "routingHttpResponseXFrameOptionsHeaderValue": "X-Frame-Options",
}
# Set per listener, so on every host behind it: it would replace (or be intersected with) the frontend's
# per-request nonce CSP on the apex. Each app sets its own CSP (frontend/src/middleware.ts, app/api/middleware.py).
LISTENER_CSP = "routingHttpResponseContentSecurityPolicyHeaderValue"


def _is_alb(props) -> bool:
    return get(props, "loadBalancerType") in (None, "application")


def _listener_tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in LISTENERS:
        return
    protocol = get(args.props, "protocol")
    if protocol == "HTTPS":
        policy = get(args.props, "sslPolicy")
        allowed = knob(args, "allowedSslPolicies", TLS_POLICIES_DEFAULT)
        if policy not in allowed:
            report(f"sslPolicy is {policy!r}; allowed (TLS 1.2+ with TLS 1.3): {allowed}")
        if not present(args.props, "certificateArn"):
            report("HTTPS listener without certificateArn")
    elif protocol == "HTTP":
        actions = as_list(get(args.props, "defaultActions"))
        if not actions:
            report("HTTP listener without default actions")
        for a in actions:
            if get(a, "type") != "redirect" or get(a, "redirect", "protocol") != "HTTPS":
                report(f"HTTP listener default action is {get(a, 'type')!r}; it may only redirect to HTTPS")
            elif get(a, "redirect", "statusCode") != "HTTP_301":
                report(f"HTTP→HTTPS redirect uses {get(a, 'redirect', 'statusCode')!r}; use HTTP_301 (permanent)")
    elif protocol not in ("TLS", "TCP", "UDP", "TCP_UDP", "GENEVE") and protocol is not None:
        report(f"listener protocol {protocol!r} is not HTTPS or a redirect-only HTTP listener")


def _listener_headers(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in LISTENERS or get(args.props, "protocol") != "HTTPS":
        return
    missing = [header for prop, header in SECURITY_HEADERS.items() if not is_set(get(args.props, prop))]
    if missing:
        report(f"HTTPS listener does not set response headers {missing}")
    if is_set(get(args.props, LISTENER_CSP)):
        report(
            "HTTPS listener sets Content-Security-Policy for every host behind it (the apex included), overriding the "
            "frontend's nonce CSP; leave the CSP to each app"
        )
    hsts = get(args.props, "routingHttpResponseStrictTransportSecurityHeaderValue")
    if isinstance(hsts, str) and "max-age=" in hsts:
        try:
            age = int(hsts.split("max-age=", 1)[1].split(";", 1)[0].strip())
        except ValueError:
            age = 0
        if age < knob(args, "minHstsMaxAge", 31536000):
            report(f"HSTS max-age is {age}s; at least {knob(args, 'minHstsMaxAge', 31536000)}s")


def _access_logs(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in LOAD_BALANCERS or not _is_alb(args.props):
        return
    logs = get(args.props, "accessLogs") or {}
    if not truthy(get(logs, "enabled")) or not present(logs, "bucket"):
        report("accessLogs is not enabled with a bucket")


def _drop_invalid_headers(args: ResourceValidationArgs, report: Report) -> None:
    alb = args.resource_type in LOAD_BALANCERS and _is_alb(args.props)
    if alb and not truthy(get(args.props, "dropInvalidHeaderFields")):
        report("dropInvalidHeaderFields is not true (request smuggling via malformed headers)")


def _deletion_protection(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in LOAD_BALANCERS and not truthy(get(args.props, "enableDeletionProtection")):
        report("enableDeletionProtection is not true")


def _waf(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    associations = of_type(resources, WAF_ASSOCIATION)
    for lb in of_type(resources, *LOAD_BALANCERS):
        if truthy(peek(lb.props, "internal")) or not _is_alb(lb.props):
            continue
        if not any(_associated(a, lb) for a in associations):
            report(f"internet-facing ALB {lb.name} has no WAFv2 web ACL association", lb.urn)


def _associated(association: PolicyResource, lb: PolicyResource) -> bool:
    return refers_to(association, lb, "resourceArn", ("name",))


POLICIES: list[Policy] = [
    resource_policy(
        name="alb-listener-tls",
        description="HTTPS listeners use an allowed TLS 1.3 policy and a certificate; HTTP listeners only "
        "redirect to HTTPS with a 301.",
        severity=Severity.HIGH,
        remediation="Set ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06' (or stricter) on the HTTPS listener; "
        "make the HTTP listener's only default action a redirect {protocol: HTTPS, port: 443, status_code: "
        "HTTP_301}.",
        validate=_listener_tls,
        schema=config_schema(
            {"allowedSslPolicies": {"type": "array", "items": {"type": "string"}, "default": TLS_POLICIES_DEFAULT}}
        ),
        tags=["edge", "tls"],
    ),
    resource_policy(
        name="alb-security-headers",
        description="The HTTPS listener adds HSTS (max-age ≥ 1 year), X-Content-Type-Options and X-Frame-Options "
        "to every response, and no Content-Security-Policy (per listener, it would override the apps' own CSPs).",
        severity=Severity.MEDIUM,
        remediation="Set routing_http_response_strict_transport_security_header_value, _x_content_type_options_ and "
        "_x_frame_options_header_value on the HTTPS listener; unset _content_security_policy_header_value.",
        validate=_listener_headers,
        schema=config_schema({"minHstsMaxAge": {"type": "integer", "minimum": 0, "default": 31536000}}),
        tags=["edge", "headers"],
    ),
    resource_policy(
        name="alb-access-logs",
        description="Application load balancers write access logs to S3.",
        severity=Severity.MEDIUM,
        remediation="Set access_logs={'enabled': True, 'bucket': <access-logs bucket>, 'prefix': 'alb'}.",
        validate=_access_logs,
        tags=["edge", "audit"],
    ),
    resource_policy(
        name="alb-drop-invalid-headers",
        description="Application load balancers drop requests with invalid header fields.",
        severity=Severity.MEDIUM,
        remediation="Set drop_invalid_header_fields=True.",
        validate=_drop_invalid_headers,
        tags=["edge"],
    ),
    resource_policy(
        name="alb-deletion-protection",
        description="Load balancers cannot be deleted by accident (the DNS name clients use would change).",
        severity=Severity.MEDIUM,
        remediation="Set enable_deletion_protection=True.",
        validate=_deletion_protection,
        tags=["edge", "availability"],
    ),
    stack_policy(
        name="alb-waf",
        description="Every internet-facing ALB has a WAFv2 web ACL associated.",
        severity=Severity.HIGH,
        remediation="Add aws.wafv2.WebAclAssociation(resource_arn=alb.arn, web_acl_arn=acl.arn).",
        validate=_waf,
        tags=["edge", "waf"],
    ),
]
