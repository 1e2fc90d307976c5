"""Enum-like AWS inputs checked offline against botocore's service models.

Under mocks nothing calls AWS, so a misspelled instance type or TLS policy would only fail at `pulumi up`, half way
through a deploy. The AWS API models botocore ships list most of these values as enums (EC2 instance types, EKS
AMI types / log types / capacity types, ELB listener protocols, EBS volume types); the check reads them from the
installed botocore, so it moves with the pinned version instead of a hand-kept list. Where a model has no enum,
the source used is said next to the check (`Source`). Findings are reported in the violation shape
(`policy`, `level`, `message`, `urn`, plus `property` and `value`) and any finding fails the preview.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore
import botocore.session

from stacks.engine.offline import SECRET, Record, RecordedResource

LEVEL = "mandatory"

# ELBv2's model types SslPolicyName as a free string (DescribeSSLPolicies is the only live source), so this is
# the documented list of predefined security policies for Application and Network Load Balancers:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html
# https://docs.aws.amazon.com/elasticloadbalancing/latest/network/describe-ssl-policies.html
ELB_SSL_POLICIES = frozenset(
    {
        # TLS 1.3 (recommended), post-quantum hybrid key exchange
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
        # TLS 1.3
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        # TLS 1.3 FIPS
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
        # TLS 1.0 - 1.2 (legacy clients)
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-2015-05",
        "ELBSecurityPolicy-TLS-1-0-2015-04",
    }
)


@dataclass(frozen=True)
class Source:
    """Where the allowed values come from, for the message and the docs."""

    describe: str
    values: frozenset[str]


@functools.lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=32)
def model_enum(service: str, shape: str) -> Source:
    values = _session().get_service_model(service).shape_for(shape).enum
    if not values:
        raise LookupError(f"botocore {botocore.__version__}: {service} shape {shape} has no enum")
    return Source(f"botocore {botocore.__version__} {service} model, shape {shape}", frozenset(values))


@functools.lru_cache(maxsize=8)
def model_documented(service: str, shape: str, member: str, pattern: str) -> Source:
    """Values a member's model documentation lists (`<code>valkey</code>`, node type names) when it has no enum."""
    doc = _session().get_service_model(service).shape_for(shape).members[member].documentation
    values = frozenset(re.findall(pattern, doc))
    if not values:
        raise LookupError(f"botocore {botocore.__version__}: {service} {shape}.{member} documents no values")
    return Source(f"botocore {botocore.__version__} {service} model, {shape}.{member} documentation", values)


def _instance_types() -> Source:
    return model_enum("ec2", "InstanceType")


def _volume_types() -> Source:
    return model_enum("ec2", "VolumeType")


def _ami_types() -> Source:
    return model_enum("eks", "AMITypes")


def _log_types() -> Source:
    return model_enum("eks", "LogType")


def _capacity_types() -> Source:
    return model_enum("eks", "CapacityTypes")


def _lb_protocols() -> Source:
    return model_enum("elbv2", "ProtocolEnum")


def _ssl_policies() -> Source:
    return Source("the documented ELB predefined security policies (see stacks/engine/aws_values.py)", ELB_SSL_POLICIES)


def _cache_engines() -> Source:
    # The model types Engine as a free string; its documentation says "must be set to valkey or redis".
    return model_documented("elasticache", "CreateReplicationGroupMessage", "Engine", r"<code>([a-z]+)</code>")


def _cache_node_types() -> Source:
    return model_documented(
        "elasticache", "CreateReplicationGroupMessage", "CacheNodeType", r"cache\.[a-z0-9-]+\.[a-z0-9]+"
    )


def _cloudfront_tls_versions() -> Source:
    return model_enum("cloudfront", "MinimumProtocolVersion")


def _cloudfront_viewer_policies() -> Source:
    return model_enum("cloudfront", "ViewerProtocolPolicy")


def _cloudfront_price_classes() -> Source:
    return model_enum("cloudfront", "PriceClass")


def _cloudfront_http_versions() -> Source:
    return model_enum("cloudfront", "HttpVersion")


def _cloudfront_frame_options() -> Source:
    return model_enum("cloudfront", "FrameOptionsList")


def _cloudfront_referrer_policies() -> Source:
    return model_enum("cloudfront", "ReferrerPolicyList")


def _wafv2_scopes() -> Source:
    return model_enum("wafv2", "Scope")


# A property path: keys and "[]" (every element of a list).
Check = tuple[str, str, Callable[[], Source]]  # (policy name, property path, source)

CHECKS: dict[str, list[Check]] = {
    "aws:ec2/launchTemplate:LaunchTemplate": [
        ("aws-ec2-instance-type", "instanceType", _instance_types),
        ("aws-ebs-volume-type", "blockDeviceMappings.[].ebs.volumeType", _volume_types),
    ],
    "aws:ec2/instance:Instance": [("aws-ec2-instance-type", "instanceType", _instance_types)],
    "aws:ebs/volume:Volume": [("aws-ebs-volume-type", "type", _volume_types)],
    "aws:eks/nodeGroup:NodeGroup": [
        ("aws-ec2-instance-type", "instanceTypes.[]", _instance_types),
        ("aws-eks-ami-type", "amiType", _ami_types),
        ("aws-eks-capacity-type", "capacityType", _capacity_types),
    ],
    "aws:eks/cluster:Cluster": [("aws-eks-log-type", "enabledClusterLogTypes.[]", _log_types)],
    "aws:lb/listener:Listener": [
        ("aws-elb-ssl-policy", "sslPolicy", _ssl_policies),
        ("aws-elb-protocol", "protocol", _lb_protocols),
    ],
    "aws:alb/listener:Listener": [
        ("aws-elb-ssl-policy", "sslPolicy", _ssl_policies),
        ("aws-elb-protocol", "protocol", _lb_protocols),
    ],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        ("aws-elasticache-engine", "engine", _cache_engines),
        ("aws-elasticache-node-type", "nodeType", _cache_node_types),
    ],
    "aws:elasticache/cluster:Cluster": [
        ("aws-elasticache-engine", "engine", _cache_engines),
        ("aws-elasticache-node-type", "nodeType", _cache_node_types),
    ],
    "aws:cloudfront/distribution:Distribution": [
        ("aws-cloudfront-tls-version", "viewerCertificate.minimumProtocolVersion", _cloudfront_tls_versions),
        ("aws-cloudfront-viewer-policy", "defaultCacheBehavior.viewerProtocolPolicy", _cloudfront_viewer_policies),
        ("aws-cloudfront-viewer-policy", "orderedCacheBehaviors.[].viewerProtocolPolicy", _cloudfront_viewer_policies),
        ("aws-cloudfront-price-class", "priceClass", _cloudfront_price_classes),
        ("aws-cloudfront-http-version", "httpVersion", _cloudfront_http_versions),
    ],
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": [
        (
            "aws-cloudfront-frame-option",
            "securityHeadersConfig.frameOptions.frameOption",
            _cloudfront_frame_options,
        ),
        (
            "aws-cloudfront-referrer-policy",
            "securityHeadersConfig.referrerPolicy.referrerPolicy",
            _cloudfront_referrer_policies,
        ),
    ],
    "aws:wafv2/webAcl:WebAcl": [("aws-wafv2-scope", "scope", _wafv2_scopes)],
}


@dataclass
class AwsValueReport:
    checked: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "checked": self.checked, "errors": self.errors}


def _values_at(value: Any, path: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not path:
        yield where, value
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _values_at(item, rest, f"{where}[{i}]")
    elif isinstance(value, dict) and value.get(head) is not None:
        yield from _values_at(value[head], rest, f"{where}.{head}" if where else head)


def check_resource(resource: RecordedResource, report: AwsValueReport) -> None:
    for policy, path, source_of in CHECKS.get(resource.type, []):
        for where, value in _values_at(resource.inputs, path.split("."), ""):
            # Unknown or secret values cannot be judged offline; the real provider checks them at deploy.
            if not isinstance(value, str) or value == SECRET:
                continue
            report.checked += 1
            source = source_of()
            if value in source.values:
                continue
            close = difflib.get_close_matches(value, source.values, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            report.errors.append(
                {
                    "policy": policy,
                    "level": LEVEL,
                    "message": f"{resource.name}: {where} {value!r} is not a valid value according to "
                    f"{source.describe}{hint}",
                    "urn": resource.urn,
                    "property": where,
                    "value": value,
                }
            )


def check_aws_values(record: Record) -> AwsValueReport:
    report = AwsValueReport()
    for r in sorted(record.resources, key=lambda r: r.urn):  # URN order: the plan JSON is byte-stable
        if r.custom:
            check_resource(r, report)
    return report
