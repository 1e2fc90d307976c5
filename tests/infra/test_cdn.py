"""CloudFront in front of the ALB (infra/cdn.py, infra/cdn_waf.py), judged on the recorded plan of every stack."""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
from pathlib import Path

import botocore.session
import pytest

from infra.cdn import (
    ALL_VIEWER,
    CACHING_DISABLED,
    CACHING_OPTIMIZED,
    HSTS_MAX_AGE_S,
    MIN_PROTOCOL_VERSION,
    ORIGIN_VERIFY_HEADER,
    STATIC_PATH,
)
from infra.waf import MANAGED_RULE_GROUPS, PROXY_UPLOAD_PATH, UPLOAD_METHOD
from stacks.engine.aws_values import AwsValueReport, check_resource
from stacks.engine.offline import Record, RecordedResource
from tests.infra.platform_graph import STACKS, component, under

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


def _cdn(record: Record) -> RecordedResource:
    return component(record, "visionrag:infra:Cdn")


def _one(record: Record, type_: str) -> RecordedResource:
    (found,) = under(record, _cdn(record), type_)
    return found


def _us_east_1_provider_ref(record: Record) -> str:
    (provider,) = under(record, _cdn(record), "pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    return provider.urn


@pytest.mark.parametrize("stack", STACKS)
def test_static_assets_cached_pages_not(records: dict[str, Record], stack: str) -> None:
    dist = _one(records[stack], DISTRIBUTION).inputs
    default = dist["defaultCacheBehavior"]
    assert default["cachePolicyId"] == CACHING_DISABLED
    assert default["originRequestPolicyId"] == ALL_VIEWER  # Host reaches the ALB's host rules and cert check
    assert default["viewerProtocolPolicy"] == "redirect-to-https"
    (static,) = dist["orderedCacheBehaviors"]
    assert static["pathPattern"] == STATIC_PATH
    assert static["cachePolicyId"] == CACHING_OPTIMIZED
    assert static["viewerProtocolPolicy"] == "redirect-to-https"
    assert all(b["viewerProtocolPolicy"] != "allow-all" for b in [default, static])


@pytest.mark.parametrize("stack", STACKS)
def test_security_headers_policy_on_every_behaviour(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    policy = _one(record, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    headers = policy.inputs["securityHeadersConfig"]
    hsts = headers["strictTransportSecurity"]
    assert (hsts["accessControlMaxAgeSec"], hsts["includeSubdomains"], hsts["preload"]) == (HSTS_MAX_AGE_S, True, True)
    assert HSTS_MAX_AGE_S >= 2 * 365 * 86400
    assert headers["frameOptions"]["frameOption"] == "DENY"
    assert headers["contentTypeOptions"]["override"] is True
    assert headers["referrerPolicy"]["referrerPolicy"] == "strict-origin-when-cross-origin"
    dist = _one(record, DISTRIBUTION).inputs
    for behaviour in [dist["defaultCacheBehavior"], *dist["orderedCacheBehaviors"]]:
        assert behaviour["responseHeadersPolicyId"] == policy.outputs["id"]


@pytest.mark.parametrize("stack", STACKS)
def test_tls_certificate_waf_and_logs_in_us_east_1(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    provider = _us_east_1_provider_ref(record)
    dist = _one(record, DISTRIBUTION).inputs
    viewer = dist["viewerCertificate"]
    assert (viewer["minimumProtocolVersion"], viewer["sslSupportMethod"]) == (MIN_PROTOCOL_VERSION, "sni-only")
    cert = _one(record, "aws:acm/certificate:Certificate")
    assert cert.inputs["domainName"] == record.config.edge.domain
    acl = _one(record, "aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "CLOUDFRONT"
    assert dist["webAclId"] == acl.outputs["arn"]
    assert [r["name"] for r in acl.inputs["rules"]][: len(MANAGED_RULE_GROUPS)] == list(MANAGED_RULE_GROUPS)
    log_group = _one(record, "aws:cloudwatch/logGroup:LogGroup")
    key = _one(record, "aws:kms/key:Key")
    assert log_group.inputs["kmsKeyId"] == key.outputs["arn"]
    # CloudFront reads certificates, and CLOUDFRONT-scope ACLs exist, only in us-east-1; a log group takes only a
    # key of its own region.
    for resource in (cert, acl, log_group, key, _one(record, "aws:acm/certificateValidation:CertificateValidation")):
        assert (resource.provider or "").startswith(provider), resource.name
    delivery = _one(record, "aws:cloudwatch/logDeliverySource:LogDeliverySource")
    assert delivery.inputs["logType"] == "ACCESS_LOGS"


@pytest.mark.parametrize("stack", STACKS)
def test_alb_serves_the_apex_only_through_cloudfront(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    dist = _one(record, DISTRIBUTION).inputs
    # The origin header carries the generated secret: recorded (and stored in state) only as a secret, so the
    # value is never in plain text; both the distribution's origin and the ALB's apex rule are built from it.
    (password,) = [r for r in record.resources if r.name == "cdn-origin-verify-value"]
    assert password.type == "random:index/randomPassword:RandomPassword" and password.inputs["length"] >= 32
    distribution = _one(record, DISTRIBUTION)
    assert dist["origins"] == "[secret]"
    assert password.urn in distribution.dependencies
    edge = component(record, "visionrag:infra:Edge")
    (apex_rule,) = [r for r in under(record, edge, "aws:lb/listenerRule:ListenerRule") if r.name.endswith("frontend")]
    assert apex_rule.inputs["conditions"] == "[secret]"
    assert password.urn in apex_rule.dependencies
    assert ORIGIN_VERIFY_HEADER == "X-Origin-Verify"
    # The apex resolves to CloudFront (A and AAAA), never to the ALB directly.
    apex = record.config.edge.domain
    edge_records = [r for r in under(record, edge, "aws:route53/record:Record") if r.inputs.get("name") == apex]
    assert edge_records == []
    aliases = [r for r in under(record, _cdn(record), "aws:route53/record:Record") if r.inputs.get("name") == apex]
    assert sorted(r.inputs["type"] for r in aliases) == ["A", "AAAA"]


def test_minimum_protocol_version_is_a_cloudfront_value() -> None:
    model = botocore.session.get_session().get_service_model("cloudfront")
    assert MIN_PROTOCOL_VERSION in model.shape_for("MinimumProtocolVersion").enum


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("viewerCertificate", "minimumProtocolVersion"), "TLSv1.2_2022"),
        (("defaultCacheBehavior", "viewerProtocolPolicy"), "https-redirect"),
        (("priceClass",), "PriceClass_50"),
    ],
)
def test_misspelled_cloudfront_values_fail_the_aws_value_check(
    records: dict[str, Record], path: tuple[str, ...], bad: str
) -> None:
    dist = _one(records["dev"], DISTRIBUTION)
    assert check_aws_values_of(dist).valid
    inputs = copy.deepcopy(dist.inputs)
    cur = inputs
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = bad
    report = check_aws_values_of(dataclasses.replace(dist, inputs=inputs))
    assert [e["value"] for e in report.errors] == [bad]


@pytest.mark.parametrize("stack", STACKS)
def test_cloudfront_carries_the_browser_upload_to_the_alb(records: dict[str, Record], stack: str) -> None:
    # CloudFront caps a request's headers + URL (20,480 bytes), never its body ("Maximum length of a request,
    # including headers and query strings, but not including the body content", AWS CloudFront quotas); what can
    # still refuse or cut an upload on the distribution is a behaviour that does not allow POST, or an edge
    # function that reads the body (Lambda@Edge include_body: 1 MB). The web ACL is tests/infra/test_waf.py's.
    dist = _one(records[stack], DISTRIBUTION).inputs
    behaviours = [b for b in dist["orderedCacheBehaviors"] if fnmatch.fnmatchcase(PROXY_UPLOAD_PATH, b["pathPattern"])]
    assert behaviours == []  # the upload is the default behaviour's
    default = dist["defaultCacheBehavior"]
    assert UPLOAD_METHOD in default["allowedMethods"]
    assert default["cachePolicyId"] == CACHING_DISABLED
    assert not default.get("lambdaFunctionAssociations") and not default.get("functionAssociations")


FRONTEND_MIDDLEWARE = Path(__file__).resolve().parents[2] / "frontend" / "src" / "middleware.ts"


@pytest.mark.parametrize("stack", STACKS)
def test_the_apex_csp_comes_only_from_the_app(records: dict[str, Record], stack: str) -> None:
    # The frontend sets a per-request nonce CSP (frontend/src/middleware.ts); an edge CSP on the apex would replace
    # it (override=True) or be enforced next to it, so neither CloudFront nor the ALB listener may set one.
    record = records[stack]
    policy = _one(record, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy").inputs
    assert "contentSecurityPolicy" not in (policy.get("securityHeadersConfig") or {})
    custom = (policy.get("customHeadersConfig") or {}).get("items") or []
    assert all(h["header"].lower() != "content-security-policy" for h in custom)
    listeners = under(record, component(record, "visionrag:infra:Edge"), "aws:lb/listener:Listener")
    assert listeners and all(not r.inputs.get("routingHttpResponseContentSecurityPolicyHeaderValue") for r in listeners)
    middleware = FRONTEND_MIDDLEWARE.read_text()
    assert 'response.headers.set("content-security-policy", csp)' in middleware and "buildCsp({ nonce" in middleware


def check_aws_values_of(resource: RecordedResource) -> AwsValueReport:
    report = AwsValueReport()
    check_resource(resource, report)
    return report
