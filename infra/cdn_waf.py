"""EdgeFirewall: the CloudFront distribution's own WAFv2 web ACL (scope CLOUDFRONT).

A CLOUDFRONT-scope web ACL exists only in us-east-1 (AWS: "for CloudFront, you must create the web ACL in the US
East (N. Virginia) Region"), so it is created through the us-east-1 provider the Cdn component passes in. Same
managed rule groups as the ALB's regional ACL (infra/waf.py, the one owner of that list) plus a per-client-IP
rate-based rule. The apex serves the frontend, whose browser uploads go through its same-origin proxy
(`POST /api/proxy/index`), so this ACL carries the same upload exemption as the regional one, built by the same
function (infra/waf.py `upload_exemption`), for the apex's upload route only (the API host is not served here).
CloudFront forwards at most 16 KB of a body to WAF by default; SizeRestrictions_BODY only needs to know whether a
body exceeds 8 KB, so no larger (billed) inspection limit is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.waf import (
    MANAGED_RULE_GROUPS,
    RATE_LIMIT_BOUNDS,
    UploadRoute,
    managed_rule,
    rate_limit_rule,
    upload_exemption,
)

SCOPE = "CLOUDFRONT"
REGION = "us-east-1"  # where every CLOUDFRONT-scope WAF resource and CloudFront's certificate must live


@dataclass(frozen=True, kw_only=True)
class EdgeFirewallArgs:
    acl_name: str
    rate_limit: int
    us_east_1: aws.Provider  # the provider every CLOUDFRONT-scope resource is created with
    upload_routes: Sequence[UploadRoute]  # upload_routes(app_host=..., api_host=None)
    tags: Mapping[str, str] = field(default_factory=dict)


class EdgeFirewall(pulumi.ComponentResource):
    web_acl: aws.wafv2.WebAcl
    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EdgeFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        low, high = RATE_LIMIT_BOUNDS
        if not low <= args.rate_limit <= high:
            raise ValueError(f"rate_limit: {args.rate_limit} must be between {low} and {high}")
        # Priorities 1..n are the managed groups; the exemption's rules follow them (labels reach later rules only).
        exemption = upload_exemption(args.upload_routes, priority=len(MANAGED_RULE_GROUPS) + 1)
        super().__init__("visionrag:infra:EdgeFirewall", name, None, opts)
        rules = [managed_rule(group, priority, exemption) for priority, group in enumerate(MANAGED_RULE_GROUPS, 1)]
        rules.extend(exemption.rules)
        rules.append(rate_limit_rule(args.rate_limit, priority=len(MANAGED_RULE_GROUPS) + len(exemption.rules) + 1))
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            name=f"{args.acl_name}-cdn",
            description="CloudFront edge: AWS managed rule groups + per-IP rate limit",
            scope=SCOPE,
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{args.acl_name}-cdn", sampled_requests_enabled=True
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, provider=args.us_east_1),
        )
        self.web_acl_arn = self.web_acl.arn
        self.register_outputs({"web_acl_arn": self.web_acl_arn})
