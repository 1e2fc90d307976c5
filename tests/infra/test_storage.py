"""Storage: the five buckets per stack, Object Lock per tier, retention per tier, prod's cross-region replication."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.naming import S3_BUCKET_NAME_MAX
from infra.storage import BUCKETS, Storage, StorageArgs, bucket_names
from stacks.config import ConfigError, StackConfig
from stacks.config.loader import load_stack_config
from stacks.engine.offline import Record, RecordedResource, read_stack_file, run_stack

STACKS = ("dev", "staging", "prod")
ACCOUNT = "123456789012"  # the offline engine's account (stacks/engine/mocks.py)
PROD = f"visionrag-prod-{ACCOUNT}-us-east-1"
REPLICA = f"visionrag-prod-{ACCOUNT}-us-west-2"
# Pulumi.prod.yaml's values, so a config-only test can vary just the names.
_PROD_MINIMAL = {
    k.removeprefix("visionrag:"): v for k, v in read_stack_file("prod").items() if k.startswith("visionrag:")
}
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


def _storage(record: Record) -> RecordedResource:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Storage"]
    return component


def _part(record: Record, component: str, kind: str) -> RecordedResource:
    return record.one(f"aws:s3/{kind[0].lower()}{kind[1:]}:{kind}", f"{component}-{kind_suffix(kind)}")


def kind_suffix(kind: str) -> str:
    return {
        "Bucket": "bucket",
        "BucketLifecycleConfiguration": "lifecycle",
        "BucketPolicy": "policy",
        "BucketVersioning": "versioning",
    }[kind]


def _rules(record: Record, component: str) -> dict[str, dict[str, Any]]:
    lifecycle = _part(record, component, "BucketLifecycleConfiguration")
    return {r["id"]: r for r in lifecycle.inputs["rules"]}


@pytest.mark.parametrize("stack", STACKS)
def test_five_buckets_with_deterministic_names_are_exported(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    expected = {purpose: f"visionrag-{stack}-{ACCOUNT}-us-east-1-{purpose}" for purpose in BUCKETS}
    assert record.outputs["bucketNames"] == expected
    storage = _storage(record)
    children = {c.name for c in record.children(storage.urn) if c.type == "visionrag:infra:SecureBucket"}
    assert {f"storage-{p}" for p in BUCKETS} <= children
    for purpose, name in expected.items():
        assert _part(record, f"storage-{purpose}", "Bucket").inputs["bucket"] == name


def test_audit_object_lock_follows_the_tier(records: dict[str, Record]) -> None:
    dev, staging, prod = (records[s] for s in STACKS)
    assert _part(dev, "storage-audit", "Bucket").inputs["objectLockEnabled"] is False
    assert dev.of_type(LOCK) == []
    for record, mode, days in ((staging, "GOVERNANCE", 90), (prod, "COMPLIANCE", 2555)):
        assert _part(record, "storage-audit", "Bucket").inputs["objectLockEnabled"] is True
        (lock,) = record.of_type(LOCK)
        assert lock.name == "storage-audit-object-lock"
        assert lock.inputs["objectLockEnabled"] == "Enabled"
        assert lock.inputs["rule"] == {"defaultRetention": {"mode": mode, "days": days}}
        assert lock.inputs["bucket"] == f"visionrag-{record.stack}-{ACCOUNT}-us-east-1-audit"
    # Only the audit bucket is locked.
    for record in (staging, prod):
        locked = [b for b in record.of_type("aws:s3/bucket:Bucket") if b.inputs["objectLockEnabled"]]
        assert [b.name for b in locked] == ["storage-audit-bucket"]


def test_audit_versions_are_not_expired_before_their_retention(records: dict[str, Record]) -> None:
    for stack in STACKS:
        record = records[stack]
        noncurrent = _rules(record, "storage-audit")["expire-noncurrent-versions"]["noncurrentVersionExpiration"]
        assert noncurrent["noncurrentDays"] >= record.config.storage.audit_retention_days


def test_retention_follows_the_tier(records: dict[str, Record]) -> None:
    snapshots = {
        s: _rules(records[s], "storage-snapshots")["expire-current-versions"]["expiration"]["days"] for s in STACKS
    }
    assert snapshots == {"dev": 7, "staging": 14, "prod": 35}
    noncurrent = {
        s: _rules(records[s], "storage-pages")["expire-noncurrent-versions"]["noncurrentVersionExpiration"][
            "noncurrentDays"
        ]
        for s in STACKS
    }
    assert noncurrent == {"dev": 7, "staging": 30, "prod": 90}
    for stack in STACKS:
        logs = _rules(records[stack], "storage-access-logs")["expire-current-versions"]["expiration"]["days"]
        assert logs == records[stack].config.storage.access_log_retention_days == 365
        # Pages are never expired by age: only their noncurrent versions are.
        assert "expire-current-versions" not in _rules(records[stack], "storage-pages")


def test_access_logs_bucket_accepts_log_delivery_only_from_this_account(records: dict[str, Record]) -> None:
    record = records["prod"]
    doc = json.loads(_part(record, "storage-access-logs", "BucketPolicy").inputs["policy"])
    statements = {s["Sid"]: s for s in doc["Statement"]}
    s3_logs = statements["S3ServerAccessLogDelivery"]
    assert s3_logs["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert s3_logs["Action"] == "s3:PutObject"
    assert s3_logs["Resource"] == f"arn:aws:s3:::{PROD}-access-logs/*"
    assert s3_logs["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:s3:::visionrag-prod-*"},
    }
    alb = statements["AlbAccessLogDelivery"]
    assert alb["Principal"] == {
        "AWS": "arn:aws:iam::127311923021:root",  # us-east-1's ELB log-delivery account
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com",
    }
    assert alb["Action"] == "s3:PutObject"
    prefix = record.config.edge.access_log_prefix
    assert alb["Resource"] == f"arn:aws:s3:::{PROD}-access-logs/{prefix}/AWSLogs/123456789012/*"


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_no_replication_outside_prod(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    assert record.of_type(REPLICATION) == []
    assert record.of_type("pulumi:providers:aws") == [] or all(
        p.parent != _storage(record).urn for p in record.of_type("pulumi:providers:aws")
    )
    assert record.outputs["replicaBucketNames"] == {}
    assert not [b for b in record.of_type("aws:s3/bucket:Bucket") if "replica" in b.name]


def _replica_provider(record: Record) -> RecordedResource:
    (provider,) = [p for p in record.of_type("pulumi:providers:aws") if p.parent == _storage(record).urn]
    return provider


def test_prod_replicas_live_in_the_replica_region_with_the_same_guarantees(records: dict[str, Record]) -> None:
    record = records["prod"]
    provider = _replica_provider(record)
    assert provider.inputs["region"] == record.config.replica_region == "us-west-2"
    provider_ref = f"{provider.urn}::{provider.outputs.get('id', provider.name + '-id')}"
    assert record.outputs["replicaBucketNames"] == {
        "pages": f"{REPLICA}-pages-replica",
        "snapshots": f"{REPLICA}-snapshots-replica",
        "access-logs": f"{REPLICA}-access-logs-replica",
    }
    replica_key = record.one("aws:kms/key:Key", "storage-replica-key")
    assert replica_key.provider == provider_ref and replica_key.inputs["region"] == "us-west-2"
    assert replica_key.inputs["enableKeyRotation"] is True and replica_key.inputs["deletionWindowInDays"] == 30
    assert replica_key.outputs["arn"].startswith("arn:aws:kms:us-west-2:")
    alias = record.one("aws:kms/alias:Alias", "storage-replica-key-alias")
    assert alias.inputs["name"] == "alias/visionrag-prod-s3-replica"

    for component in ("storage-pages-replica", "storage-snapshots-replica", "storage-access-logs-replica"):
        (secure,) = [r for r in record.resources if r.name == component]
        children = record.children(secure.urn)
        assert len(children) >= 7
        for child in children:
            assert child.provider == provider_ref, child.name
            assert child.inputs["region"] == "us-west-2", child.name
        if component != "storage-access-logs-replica":
            sse = next(c for c in children if c.type.endswith("BucketServerSideEncryptionConfiguration"))
            default = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
            assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": replica_key.outputs["arn"]}


def test_prod_replicates_pages_and_snapshots_with_sse_kms(records: dict[str, Record]) -> None:
    record = records["prod"]
    role = record.one("aws:iam/role:Role", "storage-replication-role")
    replica_key_arn = record.one("aws:kms/key:Key", "storage-replica-key").outputs["arn"]
    configs = {c.name: c for c in record.of_type(REPLICATION)}
    assert set(configs) == {"storage-pages-replication", "storage-snapshots-replication"}
    for purpose in ("pages", "snapshots"):
        config = configs[f"storage-{purpose}-replication"]
        assert config.inputs["bucket"] == f"{PROD}-{purpose}"
        assert config.inputs["role"] == role.outputs["arn"]
        (rule,) = config.inputs["rules"]
        assert rule["status"] == "Enabled"
        assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
        assert rule["destination"] == {
            "bucket": f"arn:aws:s3:::{REPLICA}-{purpose}-replica",
            "storageClass": "STANDARD",
            "encryptionConfiguration": {"replicaKmsKeyId": replica_key_arn},
        }
        versionings = {
            record.one("aws:s3/bucketVersioning:BucketVersioning", f"storage-{purpose}-versioning").urn,
            record.one("aws:s3/bucketVersioning:BucketVersioning", f"storage-{purpose}-replica-versioning").urn,
        }
        assert versionings <= set(config.dependencies), "replication needs versioning on both sides first"


def test_replication_role_is_scoped_to_its_buckets_and_keys(records: dict[str, Record]) -> None:
    record = records["prod"]
    role = record.one("aws:iam/role:Role", "storage-replication-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    doc = json.loads(record.one("aws:iam/rolePolicy:RolePolicy", "storage-replication-policy").inputs["policy"])
    statements = {s["Sid"]: s for s in doc["Statement"]}
    sources = [f"arn:aws:s3:::{PROD}-pages", f"arn:aws:s3:::{PROD}-snapshots"]
    targets = [f"arn:aws:s3:::{REPLICA}-pages-replica", f"arn:aws:s3:::{REPLICA}-snapshots-replica"]
    assert statements["ReadSourceReplicationConfig"]["Resource"] == sources
    assert statements["ReadSourceObjectVersions"]["Resource"] == [f"{a}/*" for a in sources]
    assert statements["WriteReplicas"]["Resource"] == [f"{a}/*" for a in targets]
    s3_key = record.one("aws:kms/key:Key", "keys-s3").outputs["arn"]
    replica_key = record.one("aws:kms/key:Key", "storage-replica-key").outputs["arn"]
    decrypt, encrypt = statements["DecryptSourceObjects"], statements["EncryptReplicas"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", s3_key)
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == sources + [
        f"{a}/*" for a in sources
    ]
    assert encrypt["Resource"] == replica_key
    assert encrypt["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-west-2.amazonaws.com"}
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement["Sid"]


def test_bucket_names_are_global_per_account_and_region() -> None:
    # Two accounts, or two regions of one account, never share a bucket name; the purpose stays the suffix.
    a = bucket_names("visionrag-dev", "111111111111", "us-east-1", None)
    b = bucket_names("visionrag-dev", "222222222222", "us-east-1", None)
    c = bucket_names("visionrag-dev", "111111111111", "eu-west-1", None)
    assert not set(a.values()) & set(b.values()) and not set(a.values()) & set(c.values())
    assert all(name.endswith(f"-{purpose}") for purpose, name in a.items())
    assert "111111111111" in a["pages"] and "us-east-1" in a["pages"]


@pytest.mark.parametrize(
    ("overrides", "fits"),
    [
        # prod replicates: the longest name is the replica access-logs bucket in the replica region.
        ({"visionrag:namePrefix": "visionrag"}, True),
        ({"visionrag:namePrefix": "visionrag-platform"}, False),
        ({"visionrag:namePrefix": "vr", "visionrag:replicaRegion": "ap-southeast-2"}, True),
    ],
)
def test_config_refuses_a_prefix_whose_bucket_names_exceed_63_characters(overrides: dict[str, Any], fits: bool) -> None:
    values = {**_PROD_MINIMAL, "tier": "prod", "region": "us-east-1", "replicaRegion": "us-west-2"}
    values.update({k.removeprefix("visionrag:"): v for k, v in overrides.items()})
    # The project images live in the shared registry as `<namePrefix>-<image>`: a new prefix moves them too.
    values["workloads"] = json.loads(
        json.dumps(values["workloads"]).replace("/visionrag-", f"/{values['namePrefix']}-")
    )
    longest = max(
        len(n)
        for n in bucket_names(
            f"{values['namePrefix']}-prod", ACCOUNT, str(values["region"]), str(values["replicaRegion"])
        ).values()
    )
    assert (longest <= S3_BUCKET_NAME_MAX) is fits
    if fits:
        load_stack_config("prod", values)
    else:
        with pytest.raises(ConfigError, match=rf"namePrefix: .* {longest} characters; S3 allows at most 63"):
            load_stack_config("prod", values)


_GOOD: dict[str, Any] = {
    "name_prefix": "visionrag-dev",
    "account_id": ACCOUNT,
    "region": "us-east-1",
    "s3_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x",
    "noncurrent_version_expiry_days": 7,
    "snapshot_retention_days": 7,
    "access_log_retention_days": 365,
    "audit_object_lock": "off",
    "audit_retention_days": 30,
    "replication": False,
}


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("replica_region", {"replication": True}),
        ("replica_region", {"replication": True, "replica_region": "us-east-1"}),
        ("replica_region", {"replica_region": "us-west-2"}),
        ("replica_region", {"replication": True, "replica_region": "nowhere"}),
        ("audit_object_lock", {"audit_object_lock": "strict"}),
        ("snapshot_retention_days", {"snapshot_retention_days": 0}),
        ("alb_log_prefix", {"alb_log_prefix": "alb/"}),
        ("account_id", {"account_id": "12345"}),
        (
            r"name_prefix \(bucket '[a-z-]+-replica'\)",
            {"name_prefix": "a" * 20, "replication": True, "replica_region": "ap-southeast-2"},
        ),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    def program(cfg: StackConfig) -> None:
        Storage("storage", StorageArgs(**{**_GOOD, **changes}))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)


@pytest.mark.parametrize(
    ("stack", "override", "key"),
    [
        ("dev", {"visionrag:storage": {"snapshotRetentionDays": 0}}, "storage.snapshotRetentionDays"),
        ("dev", {"visionrag:storage": {"auditObjectLock": "legal-hold"}}, "storage.auditObjectLock"),
        ("staging", {"visionrag:storage": {"auditObjectLock": "off"}}, "storage.auditObjectLock"),
        ("prod", {"visionrag:storage": {"auditObjectLock": "governance"}}, "storage.auditObjectLock"),
        ("prod", {"visionrag:storage": {"replication": False}}, "storage.replication"),
        ("prod", {"visionrag:replicaRegion": "us-east-1"}, "replicaRegion"),
    ],
)
def test_config_refuses_weakened_storage_naming_the_key(stack: str, override: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run_stack(stack, overrides=override)


_PLATFORM_A = ("visionrag:infra:Keys", "visionrag:infra:Network", "visionrag:infra:Storage")


def _type_counts(record: Record) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in record.resources:
        chain = r.urn.split("::")[2]
        if chain.startswith(_PLATFORM_A):
            counts[r.type] = counts.get(r.type, 0) + 1
    return counts


def test_dev_and_prod_differ_exactly_as_the_tiers_say(records: dict[str, Record]) -> None:
    dev, prod = _type_counts(records["dev"]), _type_counts(records["prod"])
    diff = {t: prod.get(t, 0) - dev.get(t, 0) for t in set(dev) | set(prod) if prod.get(t, 0) != dev.get(t, 0)}
    s3 = "aws:s3/"
    # One subnet (and route-table association) per subnet tier in the third AZ (public, private, intra, control).
    subnet_tiers = dev["aws:ec2/subnet:Subnet"] // records["dev"].config.network.az_count
    assert diff == {
        # network: a third AZ (a subnet per tier, each associated), a NAT (+EIP) per AZ, a private route table per AZ
        "aws:ec2/subnet:Subnet": subnet_tiers,
        "aws:ec2/routeTableAssociation:RouteTableAssociation": subnet_tiers,
        "aws:ec2/routeTable:RouteTable": 1,
        "aws:ec2/natGateway:NatGateway": 2,
        "aws:ec2/eip:Eip": 2,
        # interface endpoints: none in dev (cost; its API calls take the NAT), every one in prod (network tier)
        "aws:ec2/vpcEndpoint:VpcEndpoint": len(records["prod"].config.network.interface_endpoints)
        - len(records["dev"].config.network.interface_endpoints),
        # audit bucket: Object Lock in prod only (dev: off)
        f"{s3}bucketObjectLockConfiguration:BucketObjectLockConfiguration": 1,
        # replication: provider, replica key + alias, 3 replica buckets (2 of them logging), role, 2 configs
        "pulumi:providers:aws": 1,
        "aws:kms/key:Key": 1,
        "aws:kms/alias:Alias": 1,
        "visionrag:infra:SecureBucket": 3,
        f"{s3}bucket:Bucket": 3,
        f"{s3}bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
        f"{s3}bucketOwnershipControls:BucketOwnershipControls": 3,
        f"{s3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
        f"{s3}bucketVersioning:BucketVersioning": 3,
        f"{s3}bucketLifecycleConfiguration:BucketLifecycleConfiguration": 3,
        f"{s3}bucketPolicy:BucketPolicy": 3,
        f"{s3}bucketLogging:BucketLogging": 2,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        f"{s3}bucketReplicationConfig:BucketReplicationConfig": 2,
    }
