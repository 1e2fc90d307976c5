"""CloudFront distributions: viewer TLS, HTTPS everywhere, a WAF web ACL, the security-headers policy with HSTS,
and access logs (infra/cdn.py builds the one this project deploys)."""

from __future__ import annotations

from pulumi_policy import Policy, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    is_list,
    knob,
    number,
    of_type,
    peek,
    present,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
)

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
LOG_DELIVERY_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
# TLS 1.2+ viewer policies with modern ciphers only (the botocore cloudfront model's MinimumProtocolVersion enum
# minus SSLv3/TLSv1*, TLSv1.2_2018 and TLSv1.2_2019, which still allow CBC/SHA-1 suites).
TLS_VERSIONS_DEFAULT = ["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"]
MIN_HSTS_DEFAULT = 31_536_000


def _behaviours(props: object) -> list[object]:
    return [get(props, "defaultCacheBehavior"), *as_list(get(props, "orderedCacheBehaviors"))]


def _viewer_tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    viewer = get(args.props, "viewerCertificate")
    if truthy(get(viewer, "cloudfrontDefaultCertificate")) or not present(viewer, "acmCertificateArn"):
        report("viewerCertificate uses the *.cloudfront.net default certificate; set an ACM certificate (us-east-1)")
    allowed = knob(args, "allowedMinimumProtocolVersions", TLS_VERSIONS_DEFAULT)
    version = get(viewer, "minimumProtocolVersion")
    if version not in allowed:
        report(f"viewerCertificate.minimumProtocolVersion is {version!r}; allowed (TLS 1.2+): {allowed}")


def _https_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    for behaviour in _behaviours(args.props):
        policy = get(behaviour, "viewerProtocolPolicy")
        if policy not in ("redirect-to-https", "https-only"):
            where = get(behaviour, "pathPattern") or "default"
            report(f"cache behaviour {where!r} has viewerProtocolPolicy {policy!r}; use redirect-to-https")
    origins = peek(args.props, "origins")
    # A secret origin list (it carries the origin-verify header) cannot be read offline; the real preview can.
    for origin in origins if is_list(origins) else []:
        custom = get(origin, "customOriginConfig")
        if custom is not None and get(custom, "originProtocolPolicy") != "https-only":
            report(f"origin {get(origin, 'originId')!r} is reached over {get(custom, 'originProtocolPolicy')!r}")


def _waf(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == DISTRIBUTION and not present(args.props, "webAclId"):
        report("webAclId is not set: the distribution has no WAF web ACL (scope CLOUDFRONT)")


def _headers_policy_ok(policy: PolicyResource, min_age: float) -> list[str]:
    config = peek(policy.props, "securityHeadersConfig")
    hsts = get(config, "strictTransportSecurity")
    problems = []
    age = number(get(hsts, "accessControlMaxAgeSec"))
    if age is None or age < min_age or not truthy(get(hsts, "includeSubdomains")):
        problems.append(f"HSTS max-age {age} (needs >= {min_age:g} with includeSubdomains)")
    if get(config, "contentTypeOptions") is None:
        problems.append("no X-Content-Type-Options")
    if get(config, "frameOptions", "frameOption") not in ("DENY", "SAMEORIGIN"):
        problems.append("no X-Frame-Options")
    return problems


def _security_headers(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    policies = of_type(resources, HEADERS_POLICY)
    min_age = float(knob(args, "minHstsMaxAge", MIN_HSTS_DEFAULT))
    for dist in of_type(resources, DISTRIBUTION):
        missing = [b for b in _behaviours(dist.props) if not present(b, "responseHeadersPolicyId")]
        if missing:
            report(f"{dist.name}: {len(missing)} cache behaviour(s) without a response headers policy", dist.urn)
            continue
        used = [p for p in policies if any(d.urn == p.urn for d in dist.dependencies)]
        if not used:
            report(f"{dist.name}: its response headers policy is not one this stack defines", dist.urn)
        for policy in used:
            for problem in _headers_policy_ok(policy, min_age):
                report(f"{dist.name}: response headers policy {policy.name}: {problem}", dist.urn)


def _access_logs(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    sources = [s for s in of_type(resources, LOG_DELIVERY_SOURCE) if peek(s.props, "logType") == "ACCESS_LOGS"]
    for dist in of_type(resources, DISTRIBUTION):
        if present(dist.props, "loggingConfig", "bucket"):
            continue  # legacy standard logging to S3
        if not any(refers_to(s, dist, "resourceArn", ("arn",)) for s in sources):
            report(f"{dist.name} has no access logs (standard logging v2 delivery source or loggingConfig)", dist.urn)


POLICIES: list[Policy] = [
    resource_policy(
        name="cloudfront-viewer-tls",
        description="Distributions serve an ACM certificate with a TLS 1.2+ minimum protocol version.",
        severity=Severity.HIGH,
        remediation="viewer_certificate={acm_certificate_arn: <us-east-1 cert>, ssl_support_method: 'sni-only', "
        "minimum_protocol_version: 'TLSv1.2_2021'}.",
        validate=_viewer_tls,
        schema=config_schema(
            {
                "allowedMinimumProtocolVersions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": TLS_VERSIONS_DEFAULT,
                }
            }
        ),
        tags=["edge", "tls", "cdn"],
    ),
    resource_policy(
        name="cloudfront-https-only",
        description="No cache behaviour serves plain HTTP (allow-all); custom origins are reached over HTTPS only.",
        severity=Severity.HIGH,
        remediation="viewer_protocol_policy='redirect-to-https' on every behaviour; origin_protocol_policy="
        "'https-only' on custom origins.",
        validate=_https_only,
        tags=["edge", "tls", "cdn"],
    ),
    resource_policy(
        name="cloudfront-waf",
        description="Every distribution has a WAFv2 web ACL (scope CLOUDFRONT, created in us-east-1).",
        severity=Severity.HIGH,
        remediation="Set web_acl_id=<CLOUDFRONT-scope web ACL ARN> (infra/cdn_waf.py).",
        validate=_waf,
        tags=["edge", "waf", "cdn"],
    ),
    stack_policy(
        name="cloudfront-security-headers",
        description="Every cache behaviour has a response headers policy with HSTS (max-age >= 1 year, "
        "includeSubDomains), X-Content-Type-Options and X-Frame-Options.",
        severity=Severity.MEDIUM,
        remediation="Attach an aws.cloudfront.ResponseHeadersPolicy with security_headers_config to every "
        "behaviour (response_headers_policy_id).",
        validate=_security_headers,
        schema=config_schema({"minHstsMaxAge": {"type": "integer", "minimum": 0, "default": MIN_HSTS_DEFAULT}}),
        tags=["edge", "headers", "cdn"],
    ),
    stack_policy(
        name="cloudfront-access-logs",
        description="Every distribution writes access logs (standard logging v2 delivery, or legacy S3 logging).",
        severity=Severity.MEDIUM,
        remediation="Add aws.cloudwatch.LogDeliverySource(log_type='ACCESS_LOGS', resource_arn=distribution.arn) "
        "with a destination and a LogDelivery.",
        validate=_access_logs,
        tags=["edge", "audit", "cdn"],
    ),
]
