"""WebFirewall: a regional WAFv2 web ACL in front of the ALB.

AWS managed rule groups for the common web exploits (OWASP-style) and known-bad inputs (Log4j/JNDI, exploitable
paths), plus a per-client-IP rate-based rule. Request logs go to a KMS-encrypted log group with the
Authorization header redacted (a bearer token must never land in a log).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.naming import LOG_RETENTION_DAYS

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
# The Common rule set blocks every body over 8 KB (SizeRestrictions_BODY), i.e. every PDF upload. That rule only
# counts (and labels) here; LARGE_BODY_RULE blocks the label again unless UPLOAD_ROUTE_RULE marked the request as
# one of the upload routes. Both web ACLs (this regional one on the ALB, infra/cdn_waf.py on CloudFront) are built
# with `upload_exemption`, the one owner of that logic.
# Managed rule name -> the label it adds to a matching request (AWS: "awswaf:managed:aws:core-rule-set:<Name>").
UPLOAD_EXEMPT_RULES: dict[str, str] = {
    "SizeRestrictions_BODY": "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body",
}
# The API's upload endpoint (app/api/routers/index.py) on the API host; the API caps it itself
# (MAX_UPLOAD_MB x MAX_UPLOAD_FILES, owned by infra/workloads/uploads.py and set on the api pods; 413 beyond).
UPLOAD_METHOD = "POST"
UPLOAD_PATH = "/index"
# The browser uploads through the frontend's same-origin proxy on the apex (frontend/src/app/api/proxy/[...path],
# allow-listed in frontend/src/lib/api/proxy.ts), which streams the body on to the API's POST /index.
PROXY_UPLOAD_PATH = "/api/proxy" + UPLOAD_PATH
UPLOAD_ROUTE_RULE = "mark-upload-routes"  # count rule: labels a request to an upload route
UPLOAD_ROUTE_LABEL = "visionrag:upload-route"  # its label (the ACL's namespace is prepended by WAF)
LARGE_BODY_RULE = "block-large-bodies"  # blocks an oversize-labelled request without the upload-route label
# The body size over which SizeRestrictions_BODY labels a request (AWS, fixed). How much of a body WAF can inspect:
# 8 KB behind an ALB (fixed), 16 KB by default behind CloudFront (association_config, up to 64 KB). Neither limit
# matters here: the size rule only asks "more than 8 KB?", which both answer; the API enforces the real cap.
SIZE_RESTRICTIONS_BODY_BYTES = 8 * 1024
ALB_BODY_INSPECTION_LIMIT_BYTES = 8 * 1024
CLOUDFRONT_DEFAULT_BODY_INSPECTION_LIMIT_BYTES = 16 * 1024
RATE_LIMIT_BOUNDS = (100, 2_000_000_000)  # WAFv2's limits for a rate-based rule (per 5-minute window)
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"  # WAF only delivers to log groups named with this prefix


@dataclass(frozen=True, kw_only=True)
class UploadRoute:
    """One route whose large bodies pass the edge: exactly this Host, method and path."""

    host: str
    method: str
    path: str


def upload_routes(*, app_host: str, api_host: str | None) -> tuple[UploadRoute, ...]:
    """The upload routes a web ACL exempts: the apex's proxy route always, the API host's route where the ACL
    also guards the API host (the ALB's; CloudFront serves only the apex, so `api_host=None` there)."""
    routes = [UploadRoute(host=app_host, method=UPLOAD_METHOD, path=PROXY_UPLOAD_PATH)]
    if api_host is not None:
        routes.append(UploadRoute(host=api_host, method=UPLOAD_METHOD, path=UPLOAD_PATH))
    return tuple(routes)


@dataclass(frozen=True, kw_only=True)
class WebFirewallArgs:
    acl_name: str
    resource_arn: pulumi.Input[str]  # the ALB
    rate_limit: int
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    upload_routes: Sequence[UploadRoute]  # upload_routes(app_host=..., api_host=...)
    tags: Mapping[str, str] = field(default_factory=dict)


def _visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def managed_rule(group: str, priority: int, exemption: UploadExemption) -> aws.wafv2.WebAclRuleArgs:
    """One AWS managed rule group; the Common rule set carries the upload exemption's overrides."""
    return aws.wafv2.WebAclRuleArgs(
        name=group,
        priority=priority,
        override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                vendor_name="AWS",
                name=group,
                rule_action_overrides=exemption.overrides if group == COMMON_RULE_SET else None,
            )
        ),
        visibility_config=_visibility(group),
    )


def rate_limit_rule(limit: int, priority: int) -> aws.wafv2.WebAclRuleArgs:
    """Per-IP rate limit over WAF's 5-minute window (the same rule in the regional and the CloudFront ACL)."""
    return aws.wafv2.WebAclRuleArgs(
        name="rate-limit-per-ip",
        priority=priority,
        action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                aggregate_key_type="IP", limit=limit, evaluation_window_sec=300
            )
        ),
        visibility_config=_visibility("rate-limit-per-ip"),
    )


def _upload_overrides() -> list[aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs]:
    return [
        aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
            name=rule,
            action_to_use=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
                count=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()
            ),
        )
        for rule in UPLOAD_EXEMPT_RULES
    ]


def _exactly(
    to_match: aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchArgs, value: str, transformation: str
) -> aws.wafv2.WebAclRuleStatementArgs:
    return aws.wafv2.WebAclRuleStatementArgs(
        byte_match_statement=aws.wafv2.WebAclRuleStatementByteMatchStatementArgs(
            field_to_match=to_match,
            positional_constraint="EXACTLY",
            search_string=value,
            text_transformations=[
                aws.wafv2.WebAclRuleStatementByteMatchStatementTextTransformationArgs(priority=0, type=transformation)
            ],
        )
    )


def _either(statements: list[aws.wafv2.WebAclRuleStatementArgs]) -> aws.wafv2.WebAclRuleStatementArgs:
    # WAF wants at least two statements in an OR.
    if len(statements) == 1:
        return statements[0]
    return aws.wafv2.WebAclRuleStatementArgs(
        or_statement=aws.wafv2.WebAclRuleStatementOrStatementArgs(statements=statements)
    )


def _label(key: str) -> aws.wafv2.WebAclRuleStatementArgs:
    return aws.wafv2.WebAclRuleStatementArgs(
        label_match_statement=aws.wafv2.WebAclRuleStatementLabelMatchStatementArgs(scope="LABEL", key=key)
    )


@dataclass(frozen=True)
class UploadExemption:
    """What a web ACL needs so that large bodies pass on the upload routes only."""

    overrides: list[aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs]  # for the CRS
    rules: list[aws.wafv2.WebAclRuleArgs]  # to place after the Common rule set (labels reach later rules only)


def upload_exemption(routes: Sequence[UploadRoute], *, priority: int) -> UploadExemption:
    """Count SizeRestrictions_BODY in the Common rule set and block its label again off the upload routes.

    Two rules, because the provider nests logical statements three levels deep at most: a count rule labels a
    request that is one of the routes (or -> and -> match), the block rule blocks an oversize-labelled request
    without that label (and -> not -> label). Host, method and path match EXACTLY: /index/../admin, /Index or
    /index/ are not an upload route; only the Host is lower-cased first (DNS names are case-insensitive).
    """
    if not routes:
        raise ValueError("upload_routes: at least one (host, method, path) is needed")
    field_ = aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchArgs
    host = field_(
        single_header=aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchSingleHeaderArgs(name="host")
    )
    method = field_(method=aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchMethodArgs())
    path = field_(uri_path=aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchUriPathArgs())
    mark = aws.wafv2.WebAclRuleArgs(
        name=UPLOAD_ROUTE_RULE,
        priority=priority,
        # Count: the request goes on to the next rules carrying the label; it is never allowed early.
        action=aws.wafv2.WebAclRuleActionArgs(count=aws.wafv2.WebAclRuleActionCountArgs()),
        rule_labels=[aws.wafv2.WebAclRuleRuleLabelArgs(name=UPLOAD_ROUTE_LABEL)],
        statement=_either(
            [
                aws.wafv2.WebAclRuleStatementArgs(
                    and_statement=aws.wafv2.WebAclRuleStatementAndStatementArgs(
                        statements=[
                            _exactly(host, route.host.lower(), "LOWERCASE"),
                            _exactly(method, route.method, "NONE"),
                            _exactly(path, route.path, "NONE"),
                        ]
                    )
                )
                for route in routes
            ]
        ),
        visibility_config=_visibility(UPLOAD_ROUTE_RULE),
    )
    block = aws.wafv2.WebAclRuleArgs(
        name=LARGE_BODY_RULE,
        priority=priority + 1,
        action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            and_statement=aws.wafv2.WebAclRuleStatementAndStatementArgs(
                statements=[
                    _either([_label(key) for key in UPLOAD_EXEMPT_RULES.values()]),
                    aws.wafv2.WebAclRuleStatementArgs(
                        not_statement=aws.wafv2.WebAclRuleStatementNotStatementArgs(
                            statement=_label(UPLOAD_ROUTE_LABEL)
                        )
                    ),
                ]
            )
        ),
        visibility_config=_visibility(LARGE_BODY_RULE),
    )
    return UploadExemption(overrides=_upload_overrides(), rules=[mark, block])


class WebFirewall(pulumi.ComponentResource):
    web_acl: aws.wafv2.WebAcl
    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        lo, hi = RATE_LIMIT_BOUNDS
        if not lo <= args.rate_limit <= hi:
            raise ValueError(f"rate_limit: {args.rate_limit} must be between {lo} and {hi} requests per 5 minutes")
        if args.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days: {args.log_retention_days} is not a CloudWatch Logs retention value")
        if not args.acl_name or len(args.acl_name) > 128:
            raise ValueError(f"acl_name: {args.acl_name!r} must be 1-128 characters")
        exemption = upload_exemption(args.upload_routes, priority=15)  # refuses no routes before any resource
        super().__init__("visionrag:infra:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        rules = [managed_rule(group, 10 * (i + 1), exemption) for i, group in enumerate(MANAGED_RULE_GROUPS)]
        # After the Common rule set (labels are visible to later rules only): what it only counted is blocked
        # again everywhere except on the upload routes.
        rules.extend(exemption.rules)
        rules.append(rate_limit_rule(args.rate_limit, priority=100))
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            name=args.acl_name,
            description="visionrag edge: AWS managed rules and a per-IP rate limit",
            scope="REGIONAL",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=args.acl_name, sampled_requests_enabled=True
            ),
            tags=tags,
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-association", resource_arn=args.resource_arn, web_acl_arn=self.web_acl.arn, opts=child
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{WAF_LOG_GROUP_PREFIX}{args.acl_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[log_group.arn],
            redacted_fields=[
                aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
                )
                for header in ("authorization", "cookie")
            ],
            opts=child,
        )

        self.web_acl_arn = self.web_acl.arn
        self.register_outputs({"web_acl_arn": self.web_acl_arn})
