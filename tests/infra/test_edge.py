"""Edge: TLS certificate and validation, ALB hardening, listeners, headers, routing, canary, WAF, security groups."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.edge import HSTS, TARGETS, TLS_POLICY, Edge, EdgeArgs
from infra.waf import MANAGED_RULE_GROUPS
from stacks.engine.aws_values import check_aws_values
from stacks.engine.offline import Record, RecordedResource
from tests.infra.platform_graph import CANARY, EDITED_DEV, STACKS, component, under

LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def _edge(record: Record) -> RecordedResource:
    return component(record, "visionrag:infra:Edge")


def _one(record: Record, type_: str) -> RecordedResource:
    (found,) = under(record, _edge(record), type_)
    return found


def _listener(record: Record, port: int) -> RecordedResource:
    (found,) = [r for r in under(record, _edge(record), LISTENER) if r.inputs["port"] == port]
    return found


def _rules(record: Record) -> dict[str, RecordedResource]:
    return {r.name.rsplit("-", 1)[-1]: r for r in under(record, _edge(record), RULE)}


@pytest.mark.parametrize("stack", STACKS)
def test_certificate_dns_validated_in_configured_zone(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    ec = record.config.edge
    cert = _one(record, "aws:acm/certificate:Certificate")
    api_host = f"{ec.api_subdomain}.{ec.domain}"
    assert cert.inputs["domainName"] == ec.domain
    assert cert.inputs["subjectAlternativeNames"] == [api_host]
    assert cert.inputs["validationMethod"] == "DNS"
    records_ = [r for r in under(record, _edge(record), "aws:route53/record:Record") if "validation" in r.name]
    dvo = {o["resourceRecordName"]: o for o in cert.outputs["domainValidationOptions"]}
    assert len(records_) == 2
    for r in records_:
        assert r.inputs["zoneId"] == ec.hosted_zone_id
        assert r.inputs["records"] == [dvo[r.inputs["name"]]["resourceRecordValue"]]
    validation = _one(record, "aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"]
    assert sorted(validation.inputs["validationRecordFqdns"]) == sorted(r.outputs["fqdn"] for r in records_)
    # The HTTPS listener only gets the certificate once it is validated.
    assert validation.urn in _listener(record, 443).dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_alb_public_logged_hardened(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    alb = _one(record, "aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["loadBalancerType"] == "application"
    assert alb.inputs["internal"] is False
    public = [s.outputs["id"] for s in record.resources if s.type == "aws:ec2/subnet:Subnet" and "public" in s.name]
    assert sorted(alb.inputs["subnets"]) == sorted(public)
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["enableDeletionProtection"] is (stack != "dev")
    assert alb.inputs["accessLogs"] == {
        "enabled": True,
        "bucket": record.outputs["bucketNames"]["access-logs"],
        "prefix": record.config.edge.access_log_prefix,
    }
    policy = [r for r in record.resources if r.type == "aws:s3/bucketPolicy:BucketPolicy" and "access-logs" in r.name]
    assert policy and policy[0].urn in alb.dependencies
    assert record.outputs["albDnsName"] == alb.outputs["dnsName"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_https_listener_tls13_and_security_headers(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    https = _listener(record, 443)
    assert https.inputs["protocol"] == "HTTPS"
    assert https.inputs["sslPolicy"] == TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.inputs["routingHttpResponseStrictTransportSecurityHeaderValue"] == HSTS
    assert "max-age=63072000" in HSTS
    assert https.inputs["routingHttpResponseXContentTypeOptionsHeaderValue"] == "nosniff"
    assert https.inputs["routingHttpResponseXFrameOptionsHeaderValue"] == "DENY"
    # No CSP on the listener: it would apply to both hosts; each app sets its own (test_api_sets_its_own_csp,
    # tests/infra/test_cdn.py::test_the_apex_csp_comes_only_from_the_app).
    assert not https.inputs.get("routingHttpResponseContentSecurityPolicyHeaderValue")
    assert https.inputs["routingHttpResponseServerEnabled"] is False
    # Unknown hosts get a 404 from the ALB; nothing is forwarded by default.
    (default,) = https.inputs["defaultActions"]
    assert default["type"] == "fixed-response" and default["fixedResponse"]["statusCode"] == "404"


async def test_api_sets_its_own_csp() -> None:
    # The API host's CSP, now that the listener sets none: the API's middleware answers every JSON response with
    # a deny-all policy (a JSON API loads nothing and is framed by no one).
    from app.api.middleware import SecurityHeadersMiddleware

    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})

    async def send(message: Any) -> None:
        sent.append(message)

    await SecurityHeadersMiddleware(app)({"type": "http", "path": "/health"}, None, send)  # type: ignore[arg-type]
    headers = dict(sent[0]["headers"])
    assert headers[b"content-security-policy"].split(b"; ")[:2] == [b"default-src 'none'", b"frame-ancestors 'none'"]


@pytest.mark.parametrize("stack", STACKS)
def test_http_listener_only_redirects(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    http = _listener(record, 80)
    assert http.inputs["protocol"] == "HTTP"
    assert http.inputs["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    ]
    listener_arn = http.outputs["arn"]
    assert not [r for r in record.resources if r.type == RULE and r.inputs["listenerArn"] == listener_arn]


@pytest.mark.parametrize("stack", STACKS)
def test_target_groups_ip_with_health_checks(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    tgs = {r.name.removeprefix("edge-tg-"): r for r in under(record, _edge(record), "aws:lb/targetGroup:TargetGroup")}
    assert set(tgs) == {"api", "frontend", "api-canary"}
    for key, tg in tgs.items():
        port, path = TARGETS[key]
        assert tg.inputs["targetType"] == "ip"
        assert tg.inputs["port"] == port
        assert tg.inputs["healthCheck"]["path"] == path
        assert len(tg.inputs["name"]) <= 32
    assert tgs["api"].inputs["healthCheck"]["path"] == "/health"
    assert tgs["frontend"].inputs["healthCheck"]["path"] == "/api/health"  # "/" redirects anonymous visitors


def test_host_routing_without_canary(records: dict[str, Record]) -> None:
    record = records["prod"]
    ec = record.config.edge
    rules = _rules(record)
    tgs = {r.name.removeprefix("edge-tg-"): r.outputs["arn"] for r in record.of_type("aws:lb/targetGroup:TargetGroup")}
    assert rules["api"].inputs["conditions"] == [{"hostHeader": {"values": [f"api.{ec.domain}"]}}]
    assert rules["api"].inputs["actions"][0]["forward"]["targetGroups"] == [{"arn": tgs["api"], "weight": 100}]
    # The committed stacks run the frontend behind CloudFront: the apex rule's conditions (Host + the CloudFront
    # origin secret, hence recorded as a secret; judged in tests/infra/test_cdn.py) forward to the frontend.
    assert record.config.workloads.frontend is not None
    assert rules["frontend"].inputs["conditions"] == "[secret]"
    (apex,) = rules["frontend"].inputs["actions"]
    assert apex == {"type": "forward", "targetGroupArn": tgs["frontend"]}


def test_apex_without_a_frontend_answers_404_naming_the_api_host(record_of: Any) -> None:
    # No frontend: the apex must not forward to a target group with no targets (every visitor would get a 503);
    # it answers a fixed 404 that names the API host, on the Host condition alone (no CloudFront in front).
    record = record_of("dev", overrides={"visionrag:workloads": {"frontend": None}})
    ec = record.config.edge
    assert record.config.workloads.frontend is None
    rules = _rules(record)
    assert rules["frontend"].inputs["conditions"] == [{"hostHeader": {"values": [ec.domain]}}]
    (apex,) = rules["frontend"].inputs["actions"]
    assert apex["type"] == "fixed-response" and "targetGroupArn" not in apex
    assert apex["fixedResponse"]["statusCode"] == "404"
    assert f"https://api.{ec.domain}" in apex["fixedResponse"]["messageBody"]
    assert not record.of_type("aws:cloudfront/distribution:Distribution")


def test_apex_forwards_to_the_frontend_once_one_is_deployed(record_of: Any) -> None:
    frontend = {
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-frontend:0.1.0",
        "replicas": 1,
        "resources": {"cpuRequest": "250m", "cpuLimit": "1", "memoryRequest": "512Mi", "memoryLimit": "1Gi"},
    }
    record = record_of("dev", overrides={"visionrag:workloads": {"frontend": frontend}})
    tgs = {r.name.removeprefix("edge-tg-"): r.outputs["arn"] for r in record.of_type("aws:lb/targetGroup:TargetGroup")}
    (apex,) = _rules(record)["frontend"].inputs["actions"]
    assert apex == {"type": "forward", "targetGroupArn": tgs["frontend"]}


def test_canary_weight_from_config_splits_api_traffic(record_of: Any) -> None:
    record = record_of("dev", overrides=EDITED_DEV)
    assert CANARY["weight"] == 15
    tgs = {r.name.removeprefix("edge-tg-"): r.outputs["arn"] for r in record.of_type("aws:lb/targetGroup:TargetGroup")}
    forward = _rules(record)["api"].inputs["actions"][0]["forward"]
    assert forward["targetGroups"] == [
        {"arn": tgs["api"], "weight": 85},
        {"arn": tgs["api-canary"], "weight": 15},
    ]
    assert forward["stickiness"]["enabled"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_waf_managed_rules_and_rate_limit(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    waf = component(record, "visionrag:infra:WebFirewall")
    (acl,) = under(record, waf, "aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "REGIONAL"
    managed = {
        r["statement"]["managedRuleGroupStatement"]["name"]
        for r in acl.inputs["rules"]
        if "managedRuleGroupStatement" in r["statement"]
    }
    assert managed == set(MANAGED_RULE_GROUPS)
    (rate,) = [r for r in acl.inputs["rules"] if "rateBasedStatement" in r["statement"]]
    assert rate["statement"]["rateBasedStatement"]["limit"] == record.config.edge.waf_rate_limit
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    assert "block" in rate["action"]
    (assoc,) = under(record, waf, "aws:wafv2/webAclAssociation:WebAclAssociation")
    assert assoc.inputs["resourceArn"] == _one(record, "aws:lb/loadBalancer:LoadBalancer").outputs["arn"]
    assert assoc.inputs["webAclArn"] == acl.outputs["arn"]
    (logging,) = under(record, waf, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    redacted = {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]}
    assert "authorization" in redacted
    (group,) = under(record, waf, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"].startswith("aws-waf-logs-")
    assert group.inputs["kmsKeyId"] == record.outputs["kmsKeyArns"]["logs"]


@pytest.mark.parametrize("stack", STACKS)
def test_security_groups_internet_to_alb_alb_to_nodes_only(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    edge = _edge(record)
    alb_sg = next(r for r in under(record, edge, "aws:ec2/securityGroup:SecurityGroup"))
    alb_sg_id = alb_sg.outputs["id"]
    node_sg_id = next(
        r.outputs["id"] for r in record.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "cluster-node-sg"
    )
    ingress = [r.inputs for r in under(record, edge, INGRESS)]
    to_alb = [i for i in ingress if i["securityGroupId"] == alb_sg_id]
    assert {(i["fromPort"], i.get("cidrIpv4") or i.get("cidrIpv6")) for i in to_alb} == {
        (443, "0.0.0.0/0"),
        (443, "::/0"),
        (80, "0.0.0.0/0"),
        (80, "::/0"),
    }
    assert all(i["fromPort"] == i["toPort"] for i in to_alb)
    to_nodes = [i for i in ingress if i["securityGroupId"] == node_sg_id]
    target_ports = {p for p, _ in TARGETS.values()}
    assert {i["fromPort"] for i in to_nodes} == target_ports
    assert all(i["referencedSecurityGroupId"] == alb_sg_id and i["fromPort"] == i["toPort"] for i in to_nodes)
    assert not any("cidrIpv4" in i or "cidrIpv6" in i for i in to_nodes)
    egress = [r.inputs for r in under(record, edge, EGRESS)]
    assert {e["fromPort"] for e in egress} == target_ports
    assert all(e["referencedSecurityGroupId"] == node_sg_id for e in egress)


@pytest.mark.parametrize("stack", STACKS)
def test_edge_aws_values_are_real(records: dict[str, Record], stack: str) -> None:
    report = check_aws_values(records[stack])
    assert not [e for e in report.errors if "Edge$" in e["urn"]]


def _args(**changes: Any) -> EdgeArgs:
    base = EdgeArgs(
        name_prefix="visionrag-prod",
        domain="example.com",
        api_subdomain="api",
        hosted_zone_id="Z123",
        vpc_id="vpc-1",
        public_subnet_ids=["subnet-a", "subnet-b"],
        node_security_group_id="sg-1",
        access_logs_bucket="logs",
        access_log_prefix="alb",
        deletion_protection=True,
        waf_rate_limit=2000,
        logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        log_retention_days=90,
        frontend_enabled=False,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"canary_weight": 101}, "canary_weight"),
        ({"name_prefix": "visionrag-a-very-long-stack-name"}, "name_prefix"),
        ({"domain": "Not A Domain"}, "domain"),
        ({"public_subnet_ids": ["subnet-a"]}, "public_subnet_ids"),
        ({"access_log_prefix": "alb/"}, "access_log_prefix"),
    ],
)
def test_args_refuse_bad_edges(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Edge("edge", _args(**changes))


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rate_limit": 99}, "rate_limit"), ({"rate_limit": 2_000_000_001}, "rate_limit"), ({"log_retention_days": 42},
     "log_retention_days"), ({"acl_name": ""}, "acl_name"), ({"upload_routes": ()}, "upload_routes")],
)  # fmt: skip
def test_web_firewall_refuses_bad_args(changes: dict[str, Any], field: str) -> None:
    from infra.waf import WebFirewall, WebFirewallArgs, upload_routes

    base = WebFirewallArgs(
        acl_name="visionrag-prod",
        resource_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1",
        rate_limit=2000,
        logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        log_retention_days=90,
        upload_routes=upload_routes(app_host="example.com", api_host="api.example.com"),
    )
    with pytest.raises(ValueError, match=field):
        WebFirewall("waf", dataclasses.replace(base, **changes))


def test_waf_rate_limit_out_of_range_is_refused_by_config() -> None:
    from stacks.config import ConfigError
    from stacks.engine.offline import run_stack

    with pytest.raises(ConfigError, match=r"edge\.wafRateLimit"):
        run_stack("prod", overrides={"visionrag:edge": {"wafRateLimit": 10}})
