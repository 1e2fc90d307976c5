"""Every AWS enum value Keys, Network, Storage and Registry send is one botocore's service models accept.

Under mocks nothing reaches AWS, so a misspelled enum ("BucketOwnerEnforce", "cloudwatch-logs") would only fail at
`pulumi up`. These read the allowed values from the installed botocore models, not from a hand-kept list.
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
from stacks.offline import Record

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
    for policy in records["prod"].of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        for rule in json.loads(policy.inputs["policy"])["rules"]:
            assert rule["selection"]["tagStatus"] in allowed


def test_log_retention_values_match_the_cloudwatch_logs_model() -> None:
    model = botocore.session.get_session().get_service_model("logs")
    member = model.operation_model("PutRetentionPolicy").input_shape.members["retentionInDays"]
    documented = re.search(r"Possible values are: ([\d, and]+)\.", member.documentation)
    assert documented, "botocore's documentation of retentionInDays changed shape"
    assert {int(v) for v in re.findall(r"\d+", documented.group(1))} == LOG_RETENTION_DAYS
