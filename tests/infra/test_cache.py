"""Cache: private, encrypted at rest (own CMK) and in transit, AUTH from Secrets Manager, failover per tier."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from infra.cache import PORT, Cache, CacheArgs
from stacks.engine.aws_values import check_aws_values
from stacks.engine.offline import Record, RecordedResource
from tests.infra.platform_graph import STACKS, component, statements, under

RG = "aws:elasticache/replicationGroup:ReplicationGroup"


def _cache(record: Record) -> RecordedResource:
    return component(record, "visionrag:infra:Cache")


def _rg(record: Record) -> RecordedResource:
    (rg,) = under(record, _cache(record), RG)
    return rg


@pytest.mark.parametrize("stack", STACKS)
def test_encrypted_at_rest_and_in_transit_with_auth(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    rg = _rg(record)
    (key,) = under(record, _cache(record), "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    root_admin = [s for s in statements(json.loads(key.inputs["policy"])) if s["Action"] == "kms:*"]
    assert root_admin and root_admin[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert rg.inputs["atRestEncryptionEnabled"] is True
    assert rg.inputs["kmsKeyId"] == key.outputs["arn"]
    assert rg.inputs["transitEncryptionEnabled"] is True
    assert rg.inputs["transitEncryptionMode"] == "required"
    # The token is a secret Output all the way: recorded only as the marker, never as a value.
    assert rg.inputs["authToken"] == "[secret]"
    assert rg.inputs["engine"] == record.config.cache.engine
    assert rg.inputs["engineVersion"] == record.config.cache.engine_version
    assert rg.inputs["port"] == PORT


def test_auth_token_comes_from_the_secrets_component(records: dict[str, Record]) -> None:
    record = records["prod"]
    rg = _rg(record)
    secret_parts = {
        r.urn for r in record.resources if r.type.startswith("random:") or r.type.startswith("aws:secretsmanager")
    }
    assert secret_parts & set(rg.dependencies), "the AUTH token must be derived from the Secrets component"


def test_prod_multi_az_failover_dev_single_node(records: dict[str, Record]) -> None:
    prod, dev = _rg(records["prod"]).inputs, _rg(records["dev"]).inputs
    assert prod["multiAzEnabled"] is True and prod["automaticFailoverEnabled"] is True
    assert prod["numCacheClusters"] >= 2
    assert dev["multiAzEnabled"] is False and dev["automaticFailoverEnabled"] is False
    assert dev["numCacheClusters"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_private_subnets_and_nodes_only(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    cache = _cache(record)
    rg = _rg(record)
    (subnets,) = under(record, cache, "aws:elasticache/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == record.outputs["privateSubnetIds"]
    assert rg.inputs["subnetGroupName"] == subnets.outputs["name"]
    (sg,) = under(record, cache, "aws:ec2/securityGroup:SecurityGroup")
    assert rg.inputs["securityGroupIds"] == [sg.outputs["id"]]
    node_sg = next(r for r in record.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "cluster-node-sg")
    ingress = [
        r.inputs for r in record.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == sg.outputs["id"]
    ]  # fmt: skip
    assert ingress == [
        {
            **ingress[0],
            "ipProtocol": "tcp",
            "fromPort": PORT,
            "toPort": PORT,
            "referencedSecurityGroupId": node_sg.outputs["id"],
        }
    ]
    assert "cidrIpv4" not in ingress[0] and "cidrIpv6" not in ingress[0]


@pytest.mark.parametrize("stack", STACKS)
def test_cache_aws_values_are_real(records: dict[str, Record], stack: str) -> None:
    report = check_aws_values(records[stack])
    assert not [e for e in report.errors if "Cache$" in e["urn"]]
    assert any("ReplicationGroup" in r.type for r in records[stack].resources)


def test_cache_outputs_exported(records: dict[str, Record]) -> None:
    record = records["prod"]
    assert record.outputs["cacheEndpoint"] == _rg(record).outputs["primaryEndpointAddress"]


def _args(**changes: Any) -> CacheArgs:
    base = CacheArgs(
        replication_group_id="visionrag-prod",
        engine="valkey",
        engine_version="8.0",
        node_type="cache.r7g.large",
        num_cache_clusters=2,
        multi_az=True,
        snapshot_retention_days=7,
        vpc_id="vpc-1",
        subnet_ids=["subnet-a", "subnet-b"],
        allowed_security_group_id="sg-nodes",
        region="us-east-1",
        auth_token="not-used",
        logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        log_retention_days=90,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_cache_clusters": 1}, "num_cache_clusters"),
        ({"engine": "memcached"}, "engine"),
        ({"engine_version": "8.3"}, "engine_version"),
        ({"engine": "redis"}, "engine_version: '8.0' is not an ElastiCache redis version"),
        ({"node_type": "r7g.large"}, "node_type"),
        ({"replication_group_id": "x" * 41}, "replication_group_id"),
        ({"subnet_ids": ["subnet-a"]}, "subnet_ids"),
        ({"log_retention_days": 42}, "log_retention_days"),
    ],
)
def test_args_refuse_bad_cache(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Cache("cache", _args(**changes))
