"""Cdn: a CloudFront distribution in front of the ALB for the apex (the frontend).

- `/_next/static/*` (content-hashed build assets) is cached at the edge with the managed CachingOptimized
  policy; everything else (pages, their data requests, Auth.js routes) uses CachingDisabled.
- Both behaviours forward every viewer header INCLUDING Host (managed AllViewer origin request policy): the ALB
  routes by Host (infra/edge.py) and CloudFront checks the ALB's certificate against the forwarded Host
  (AWS: "one of the domain names in the certificate must match ... the Host header if you configured CloudFront to
  forward the Host header"); the ALB's certificate already covers the apex. AllViewerExceptHostHeader would send
  the ALB's own DNS name as Host: no listener rule matches it and the certificate check fails.
- The ALB accepts apex traffic only through CloudFront: every origin request carries `X-Origin-Verify: <secret>`
  and the ALB's apex rule forwards only requests with that header (EdgeArgs.app_origin_verify).
- A response-headers policy sets HSTS (2 years, includeSubDomains, preload), nosniff, X-Frame-Options DENY and
  Referrer-Policy on every answer; the CSP stays in the app (it knows its own nonces and API host).
- Viewers: HTTPS only (HTTP redirects), TLS >= 1.2 (TLSv1.2_2021), an ACM certificate in us-east-1 (CloudFront
  reads certificates from there only), DNS-validated in the stack's zone; WAF: infra/cdn_waf.py (CLOUDFRONT scope).
- Access logs: CloudFront standard logging v2 to a CloudWatch Logs group in us-east-1.
The API host stays direct on the ALB (its SSE streams, regional WAF). Browser uploads reach the apex's proxy route
(POST /api/proxy/index): CloudFront puts no limit on a request body, and both web ACLs exempt that route (infra/waf.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.cdn_waf import REGION, EdgeFirewall, EdgeFirewallArgs
from infra.dns_validation import option_for, validation_record
from infra.waf import upload_routes

# AWS managed policies (ids are fixed by AWS: "Use managed cache policies" / "managed origin request policies").
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
STATIC_PATH = "/_next/static/*"
MIN_PROTOCOL_VERSION = "TLSv1.2_2021"
ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
ORIGIN_VERIFY_LENGTH = 48
HSTS_MAX_AGE_S = 63_072_000  # 2 years: the hstspreload.org minimum is 1 year
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"  # every CloudFront distribution's Route 53 alias zone
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
_ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]


@dataclass(frozen=True, kw_only=True)
class CdnArgs:
    name_prefix: str
    app_host: str  # the apex: the distribution's alias and the Host the ALB routes on
    hosted_zone_id: str
    alb_dns_name: pulumi.Input[str]  # the origin
    origin_verify: pulumi.Input[str]  # the secret the ALB's apex rule requires (secret output)
    waf_rate_limit: int
    log_retention_days: int
    account_id: pulumi.Input[str]  # for the us-east-1 logs key's policy
    price_class: str = "PriceClass_100"
    tags: Mapping[str, str] = field(default_factory=dict)


def _logs_key_policy(account_id: str, log_group_name: str) -> str:
    """Account administration + CloudWatch Logs in us-east-1, for this log group only (AWS: "Encrypt log data in
    CloudWatch Logs using AWS KMS", key policy with the kms:EncryptionContext:aws:logs:arn condition)."""
    log_group_arn = f"arn:aws:logs:{REGION}:{account_id}:log-group:{log_group_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsUse",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
                },
            ],
        }
    )


class OriginVerifySecret(pulumi.ComponentResource):
    """The shared secret CloudFront adds to origin requests and the ALB's apex rule requires.

    Created before both (the Edge needs it for its listener rule, the Cdn for its origin): 48 alphanumerics,
    a secret Output (state and previews show "[secret]"). Rotate with `pulumi up --replace` on its RandomPassword:
    CloudFront and the ALB rule are updated in the same apply.
    """

    value: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("visionrag:infra:OriginVerifySecret", name, None, opts)
        password = random.RandomPassword(
            f"{name}-value", length=ORIGIN_VERIFY_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.value = pulumi.Output.secret(password.result)
        self.register_outputs({})


class Cdn(pulumi.ComponentResource):
    distribution: aws.cloudfront.Distribution
    firewall: EdgeFirewall
    certificate: aws.acm.Certificate
    domain_name: pulumi.Output[str]

    def __init__(self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.price_class not in PRICE_CLASSES:
            raise ValueError(f"price_class: {args.price_class!r}; allowed: {', '.join(PRICE_CLASSES)}")
        super().__init__("visionrag:infra:Cdn", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        us_east_1 = aws.Provider(f"{name}-us-east-1", region=REGION, opts=child)
        in_us_east_1 = pulumi.ResourceOptions(parent=self, provider=us_east_1)

        # --- viewer certificate: CloudFront reads ACM certificates from us-east-1 only ---------------------
        self.certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=args.app_host,
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            tags=tags,
            opts=in_us_east_1,
        )
        # The ALB certificate validates the same host: infra/dns_validation.py overwrites rather than fails.
        option = self.certificate.domain_validation_options.apply(functools.partial(option_for, args.app_host))
        record = validation_record(f"{name}-cert-validation", zone_id=args.hosted_zone_id, option=option, opts=child)
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=in_us_east_1,
        )

        self.firewall = EdgeFirewall(
            f"{name}-waf",
            EdgeFirewallArgs(
                acl_name=args.name_prefix,
                rate_limit=args.waf_rate_limit,
                us_east_1=us_east_1,
                # CloudFront serves the apex only: its proxy upload route is the one to exempt.
                upload_routes=upload_routes(app_host=args.app_host, api_host=None),
                tags=tags,
            ),
            opts=child,
        )

        headers = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-security-headers",
            name=f"{args.name_prefix}-security-headers",
            comment="HSTS, nosniff, frame DENY, referrer policy (CSP is set by the app)",
            security_headers_config=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=HSTS_MAX_AGE_S, include_subdomains=True, preload=True, override=True
                ),
                content_type_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(
                    override=True
                ),
                frame_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigFrameOptionsArgs(
                    frame_option="DENY", override=True
                ),
                referrer_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True
                ),
            ),
            opts=child,
        )

        origin_id = "alb"
        self.distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            comment=f"{args.name_prefix}: {args.app_host} -> ALB",
            aliases=[args.app_host],
            price_class=args.price_class,
            web_acl_id=self.firewall.web_acl_arn,  # CLOUDFRONT-scope WAFv2: the ACL's ARN
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=origin_id,
                    domain_name=args.alb_dns_name,
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                        origin_read_timeout=60,
                        origin_keepalive_timeout=5,
                    ),
                    custom_headers=[
                        aws.cloudfront.DistributionOriginCustomHeaderArgs(
                            name=ORIGIN_VERIFY_HEADER, value=args.origin_verify
                        )
                    ],
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=origin_id,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=_ALL_METHODS,
                cached_methods=["GET", "HEAD"],
                cache_policy_id=CACHING_DISABLED,
                origin_request_policy_id=ALL_VIEWER,
                response_headers_policy_id=headers.id,
                compress=True,
            ),
            ordered_cache_behaviors=[
                aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                    path_pattern=STATIC_PATH,
                    target_origin_id=origin_id,
                    viewer_protocol_policy="redirect-to-https",
                    allowed_methods=["GET", "HEAD", "OPTIONS"],
                    cached_methods=["GET", "HEAD"],
                    cache_policy_id=CACHING_OPTIMIZED,
                    origin_request_policy_id=ALL_VIEWER,
                    response_headers_policy_id=headers.id,
                    compress=True,
                )
            ],
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=validation.certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=MIN_PROTOCOL_VERSION,
            ),
            tags=tags,
            opts=child,
        )

        # --- access logs: standard logging v2 (no ACL-enabled bucket needed), delivered in us-east-1 -------
        # A log group accepts only a KMS key of its own region: the stack's logs key may live elsewhere.
        log_group_name = f"/aws/cloudfront/{args.name_prefix}"
        logs_key = aws.kms.Key(
            f"{name}-logs-key",
            description=f"{args.name_prefix}: CloudFront access logs (us-east-1)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: _logs_key_policy(account, log_group_name)
            ),
            tags=tags,
            opts=in_us_east_1,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=log_group_name,
            kms_key_id=logs_key.arn,
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=in_us_east_1,
        )
        source = aws.cloudwatch.LogDeliverySource(
            f"{name}-log-source",
            name=f"{args.name_prefix}-cdn",
            log_type="ACCESS_LOGS",
            resource_arn=self.distribution.arn,
            opts=in_us_east_1,
        )
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-log-destination",
            name=f"{args.name_prefix}-cdn",
            output_format="json",
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=log_group.arn
            ),
            opts=in_us_east_1,
        )
        aws.cloudwatch.LogDelivery(
            f"{name}-log-delivery",
            delivery_source_name=source.name,
            delivery_destination_arn=destination.arn,
            opts=in_us_east_1,
        )

        # --- DNS: the apex aliases the distribution (IPv4 and IPv6) --------------------------------------
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-dns-{record_type.lower()}",
                zone_id=args.hosted_zone_id,
                name=args.app_host,
                type=record_type,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.distribution.domain_name,
                        zone_id=CLOUDFRONT_ZONE_ID,
                        evaluate_target_health=False,
                    )
                ],
                opts=child,
            )

        self.domain_name = self.distribution.domain_name
        self.register_outputs(
            {
                "distribution_arn": self.distribution.arn,
                "domain_name": self.domain_name,
                "web_acl_arn": self.firewall.web_acl_arn,
                "certificate_arn": self.certificate.arn,
            }
        )
