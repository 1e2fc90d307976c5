"""SecureBucket: every bucket of every stack carries all of the guarantees; bad Args are refused by field name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.bucket import ABORT_INCOMPLETE_MULTIPART_DAYS, SecureBucket, SecureBucketArgs
from stacks.config import StackConfig
from stacks.engine.offline import Record, RecordedResource, run_stack

STACKS = ("dev", "staging", "prod")
S3 = "aws:s3/"


def secure_buckets(record: Record) -> dict[str, RecordedResource]:
    return {r.name: r for r in record.resources if r.type == "visionrag:infra:SecureBucket"}


def parts(record: Record, component: RecordedResource) -> dict[str, RecordedResource]:
    """The component's children keyed by their type's last segment ('Bucket', 'BucketPolicy', ...)."""
    children = record.children(component.urn)
    out = {c.type.rsplit(":", 1)[1]: c for c in children}
    assert len(out) == len(children), f"{component.name}: two children of one type"
    return out


def policy(part: RecordedResource) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(part.inputs["policy"])
    return doc


def _all_buckets(records: dict[str, Record]) -> list[tuple[str, str]]:
    return [(stack, name) for stack in STACKS for name in sorted(secure_buckets(records[stack]))]


@pytest.fixture(scope="module")
def every_bucket(records: dict[str, Record]) -> list[tuple[Record, RecordedResource, dict[str, RecordedResource]]]:
    out = []
    for stack in STACKS:
        record = records[stack]
        for component in secure_buckets(record).values():
            out.append((record, component, parts(record, component)))
    return out


def test_the_stacks_have_the_expected_buckets(records: dict[str, Record]) -> None:
    # 5 buckets everywhere; prod adds replicas of pages and snapshots and an access-logs bucket in the replica region.
    assert {s: len(secure_buckets(records[s])) for s in STACKS} == {"dev": 5, "staging": 5, "prod": 8}


def test_every_bucket_blocks_all_public_access(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        block = p["BucketPublicAccessBlock"].inputs
        assert block["bucket"] == p["Bucket"].outputs["id"], component.name
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block[flag] is True, (component.name, flag)


def test_every_bucket_disables_acls(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        assert p["BucketOwnershipControls"].inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, component.name


def test_data_buckets_are_sse_kms_with_bucket_keys_and_only_access_logs_use_sse_s3(every_bucket: list[Any]) -> None:
    for record, component, p in every_bucket:
        (rule,) = p["BucketServerSideEncryptionConfiguration"].inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        if "access-logs" in component.name:
            # S3 server access log delivery cannot write to SSE-KMS buckets.
            assert default == {"sseAlgorithm": "AES256"}
            assert rule["bucketKeyEnabled"] is False
            continue
        assert default["sseAlgorithm"] == "aws:kms", component.name
        assert rule["bucketKeyEnabled"] is True
        key_arns = {k.outputs["arn"] for k in record.of_type("aws:kms/key:Key")}
        assert default["kmsMasterKeyId"] in key_arns, "encrypted with one of the stack's own CMKs"


def test_every_bucket_is_versioned(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        assert p["BucketVersioning"].inputs["versioningConfiguration"] == {"status": "Enabled"}, component.name


def test_every_bucket_expires_noncurrent_versions_and_aborts_multipart_uploads(every_bucket: list[Any]) -> None:
    for record, component, p in every_bucket:
        lifecycle = p["BucketLifecycleConfiguration"]
        rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
        assert all(r["status"] == "Enabled" for r in rules.values())
        abort = rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]
        assert abort == {"daysAfterInitiation": ABORT_INCOMPLETE_MULTIPART_DAYS}
        noncurrent = rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"]
        assert noncurrent >= record.config.storage.noncurrent_version_expiry_days, component.name
        # Lifecycle on a versioned bucket is applied after versioning is on.
        assert p["BucketVersioning"].urn in lifecycle.dependencies


def test_every_bucket_policy_denies_plain_http_and_old_tls(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        bucket_arn = p["Bucket"].outputs["arn"]
        statements = {s["Sid"]: s for s in policy(p["BucketPolicy"])["Statement"]}
        insecure, old_tls = statements["DenyInsecureTransport"], statements["DenyOutdatedTls"]
        for statement in (insecure, old_tls):
            assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
            assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"], component.name
        assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert old_tls["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
        # Nothing else in any bucket policy grants to everyone.
        for statement in statements.values():
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != "*", (component.name, statement)
        assert p["BucketPublicAccessBlock"].urn in p["BucketPolicy"].dependencies


def test_data_buckets_refuse_uploads_that_ask_for_weaker_encryption(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        statements = {s["Sid"]: s for s in policy(p["BucketPolicy"])["Statement"]}
        if "access-logs" in component.name:
            assert "DenyNonKmsUploads" not in statements, "log delivery writes SSE-S3 objects"
            continue
        deny = statements["DenyNonKmsUploads"]
        assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:PutObject")
        assert deny["Resource"] == f"{p['Bucket'].outputs['arn']}/*"
        assert deny["Condition"] == {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}


def test_every_bucket_except_access_logs_logs_to_its_regions_access_logs_bucket(every_bucket: list[Any]) -> None:
    for record, component, p in every_bucket:
        if "access-logs" in component.name:
            assert "BucketLogging" not in p, "the access-logs bucket must not log into itself"
            continue
        logging = p["BucketLogging"].inputs
        name = p["Bucket"].inputs["bucket"]
        # Each region's buckets log to that region's access-logs bucket (replicas: the replica's).
        replica = name.endswith("-replica")
        region = record.config.replica_region if replica else record.config.region
        expected = f"visionrag-{record.stack}-123456789012-{region}-access-logs{'-replica' if replica else ''}"
        assert logging["targetBucket"] == expected, component.name
        assert logging["targetPrefix"] == f"{name}/"
        assert logging["targetObjectKeyFormat"] == {"partitionedPrefix": {"partitionDateSource": "EventTime"}}


def test_no_bucket_can_be_emptied_by_destroy(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        assert p["Bucket"].inputs["forceDestroy"] is False, component.name


def test_every_child_is_named_after_its_component(every_bucket: list[Any]) -> None:
    for _, component, p in every_bucket:
        assert all(child.name.startswith(f"{component.name}-") for child in p.values())


_GOOD: dict[str, Any] = {
    "bucket_name": "visionrag-dev-pages",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x",
    "access_log_bucket": "visionrag-dev-access-logs",
    "noncurrent_version_expiry_days": 7,
}


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("bucket_name", {"bucket_name": "x" * 64}),
        ("bucket_name", {"bucket_name": "Visionrag_Pages"}),
        ("bucket_name", {"bucket_name": "visionrag-"}),
        ("kms_key_arn", {"kms_key_arn": None}),
        ("kms_key_arn", {"receives_access_logs": True, "access_log_bucket": None}),
        ("access_log_bucket", {"access_log_bucket": None}),
        ("access_log_bucket", {"receives_access_logs": True, "kms_key_arn": None}),
        ("noncurrent_version_expiry_days", {"noncurrent_version_expiry_days": 0}),
        ("expiry_days", {"expiry_days": 0}),
        ("object_lock", {"object_lock": "legal-hold"}),
        ("object_lock_retention_days", {"object_lock": "compliance"}),
        ("object_lock_retention_days", {"object_lock_retention_days": 30}),
        ("region", {"region": "west"}),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    def program(cfg: StackConfig) -> None:
        SecureBucket("b", SecureBucketArgs(**{**_GOOD, **changes}))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)


def test_the_63_character_limit_names_the_length() -> None:
    def program(cfg: StackConfig) -> None:
        SecureBucket("b", SecureBucketArgs(**{**_GOOD, "bucket_name": "a" * 64}))

    with pytest.raises(ValueError, match=r"is 64 characters; S3 allows at most 63"):
        run_stack("dev", program=program)


def test_object_lock_bucket_in_isolation() -> None:
    def program(cfg: StackConfig) -> None:
        SecureBucket("b", SecureBucketArgs(**_GOOD, object_lock="governance", object_lock_retention_days=10))

    record = run_stack("dev", program=program)
    bucket = record.one("aws:s3/bucket:Bucket", "b-bucket")
    lock = record.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "b-object-lock")
    assert bucket.inputs["objectLockEnabled"] is True
    assert lock.inputs["rule"] == {"defaultRetention": {"mode": "GOVERNANCE", "days": 10}}
