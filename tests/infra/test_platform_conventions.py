"""Conventions over everything Keys, Network, Storage, Secrets and Registry register.

- Every AWS enum value sent is one botocore's service models accept: under mocks nothing reaches AWS, so a
  misspelled enum ("BucketOwnerEnforce", "cloudwatch-logs") would only fail at `pulumi up`. The allowed values
  come from the installed botocore models, not from a hand-kept list.
- Every taggable resource carries the project/tier tags and a Name.
- Every descendant of a component is parented under it and named `<component>-...`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from infra.naming import LOG_RETENTION_DAYS
from stacks.engine.offline import Record

# (resource type, dotted path of the recorded input ([] = every list item), service, botocore shape)
ENUMS: list[tuple[str, str, str, str]] = [
    ("aws:kms/key:Key", "customerMasterKeySpec", "kms", "KeySpec"),
    ("aws:kms/key:Key", "keyUsage", "kms", "KeyUsageType"),
    ("aws:ec2/vpc:Vpc", "instanceTenancy", "ec2", "Tenancy"),
    ("aws:ec2/eip:Eip", "domain", "ec2", "DomainType"),
    ("aws:ec2/natGateway:NatGateway", "connectivityType", "ec2", "ConnectivityType"),
    ("aws:ec2/flowLog:FlowLog", "trafficType", "ec2", "TrafficType"),
    ("aws:ec2/flowLog:FlowLog", "logDestinationType", "ec2", "LogDestinationType"),
    ("aws:ec2/vpcEndpoint:VpcEndpoint", "vpcEndpointType", "ec2", "VpcEndpointType"),
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "rules.[].applyServerSideEncryptionByDefault.sseAlgorithm",
        "s3",
        "ServerSideEncryption",
    ),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "rule.objectOwnership", "s3", "ObjectOwnership"),
    ("aws:s3/bucketVersioning:BucketVersioning", "versioningConfiguration.status", "s3", "BucketVersioningStatus"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules.[].status", "s3", "ExpirationStatus"),
    (
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "rule.defaultRetention.mode",
        "s3",
        "ObjectLockRetentionMode",
    ),
    (
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "objectLockEnabled",
        "s3",
        "ObjectLockEnabled",
    ),
    (
        "aws:s3/bucketLogging:BucketLogging",
        "targetObjectKeyFormat.partitionedPrefix.partitionDateSource",
        "s3",
        "PartitionDateSource",
    ),
    ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "rules.[].status", "s3", "ReplicationRuleStatus"),
    (
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "rules.[].destination.storageClass",
        "s3",
        "StorageClass",
    ),
    (
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "rules.[].sourceSelectionCriteria.sseKmsEncryptedObjects.status",
        "s3",
        "SseKmsEncryptedObjectsStatus",
    ),
    (
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "rules.[].deleteMarkerReplication.status",
        "s3",
        "DeleteMarkerReplicationStatus",
    ),
    ("aws:ecr/repository:Repository", "imageTagMutability", "ecr", "ImageTagMutability"),
    ("aws:ecr/repository:Repository", "encryptionConfigurations.[].encryptionType", "ecr", "EncryptionType"),
]


@functools.cache
def _enum(service: str, shape: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service)
    values = model.shape_for(shape).enum
    assert values, f"{service}.{shape} has no enum in botocore"
    return frozenset(values)


def _values(value: Any, path: list[str]) -> Iterator[Any]:
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        for item in value or []:
            yield from _values(item, rest)
    elif isinstance(value, dict) and head in value:
        yield from _values(value[head], rest)


@pytest.mark.parametrize(("type_", "path", "service", "shape"), ENUMS, ids=[f"{e[0]}:{e[1]}" for e in ENUMS])
def test_enum_values_are_known_to_botocore(
    records: dict[str, Record], type_: str, path: str, service: str, shape: str
) -> None:
    allowed = _enum(service, shape)
    seen = 0
    for stack in ("dev", "prod"):
        for resource in records[stack].of_type(type_):
            for value in _values(resource.inputs, path.split(".")):
                seen += 1
                assert value in allowed, f"{stack} {resource.name}: {path}={value!r}; allowed: {sorted(allowed)}"
    assert seen, f"no {type_} carries {path}: the check checked nothing"


def test_ecr_lifecycle_tag_statuses_are_known_to_botocore(records: dict[str, Record]) -> None:
    allowed = {v.lower() for v in _enum("ecr", "TagStatus")}
    policies = records["dev"].of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")  # the registry owner's
    assert policies
    for policy in policies:
        for rule in json.loads(policy.inputs["policy"])["rules"]:
            assert rule["selection"]["tagStatus"] in allowed


def test_log_retention_values_match_the_cloudwatch_logs_model() -> None:
    model = botocore.session.get_session().get_service_model("logs")
    member = model.operation_model("PutRetentionPolicy").input_shape.members["retentionInDays"]
    documented = re.search(r"Possible values are: ([\d, and]+)\.", member.documentation)
    assert documented, "botocore's documentation of retentionInDays changed shape"
    assert {int(v) for v in re.findall(r"\d+", documented.group(1))} == LOG_RETENTION_DAYS


TAGGABLE = {
    "aws:kms/key:Key",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/eip:Eip",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:ec2/flowLog:FlowLog",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:iam/role:Role",
    "aws:s3/bucket:Bucket",
    "aws:secretsmanager/secret:Secret",
    "aws:ecr/repository:Repository",
}
_MINE = tuple(f"visionrag:infra:{c}" for c in ("Keys", "Network", "Storage", "Secrets", "Registry"))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_taggable_platform_resource_carries_project_and_tier(records: dict[str, Record], stack: str) -> None:
    mine = [r for r in records[stack].resources if r.urn.split("::")[2].startswith(_MINE) and r.type in TAGGABLE]
    # The shared registry's repositories exist only in the stack that owns them (docs/delivery.md).
    owner = records[stack].config.registry.owner
    assert {r.type for r in mine} == (TAGGABLE if owner else TAGGABLE - {"aws:ecr/repository:Repository"})
    for resource in mine:
        tags = resource.inputs.get("tags") or {}
        assert tags.get("project") == "visionrag" and tags.get("tier") == stack, (resource.name, tags)
        assert tags.get("Name"), f"{resource.name} has no Name tag"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_platform_child_is_parented_and_named_after_its_component(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    components = [r for r in record.resources if r.type in _MINE]
    expected = _MINE if record.config.registry.owner else tuple(c for c in _MINE if not c.endswith(":Registry"))
    assert {c.type for c in components} == set(expected)
    for component in components:
        descendants, frontier = [], [component.urn]
        while frontier:
            children = [r for r in record.resources if r.parent in frontier]
            descendants += children
            frontier = [c.urn for c in children]
        assert descendants, component.name
        for child in descendants:
            assert child.name.startswith(f"{component.name}-"), (component.name, child.name)
