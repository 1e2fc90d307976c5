"""WebFirewall: a regional WAFv2 web ACL in front of the ALB.

AWS managed rule groups for the common web exploits (OWASP-style) and known-bad inputs (Log4j/JNDI, exploitable
paths), plus a per-client-IP rate-based rule. Request logs go to a KMS-encrypted log group with the
Authorization header redacted (a bearer token must never land in a log).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.network import LOG_RETENTION_DAYS

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
RATE_LIMIT_BOUNDS = (100, 2_000_000_000)  # WAFv2's limits for a rate-based rule (per 5-minute window)
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"  # WAF only delivers to log groups named with this prefix


@dataclass(frozen=True, kw_only=True)
class WebFirewallArgs:
    acl_name: str
    resource_arn: pulumi.Input[str]  # the ALB
    rate_limit: int
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


def _visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


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
        super().__init__("visionrag:infra:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        rules = [
            aws.wafv2.WebAclRuleArgs(
                name=group,
                priority=10 * (i + 1),
                override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                    none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
                ),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=_visibility(group),
            )
            for i, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            aws.wafv2.WebAclRuleArgs(
                name="rate-limit-per-ip",
                priority=100,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        aggregate_key_type="IP", limit=args.rate_limit, evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility("rate-limit-per-ip"),
            )
        )
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
