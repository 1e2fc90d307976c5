"""Snapshots end to end: qdrant-client -> Qdrant REST double -> boto3 multipart upload to SeaweedFS (SSE) ->
prune -> restore from a presigned SeaweedFS URL with checksum. SSE-KMS request shape checked on moto."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from qdrant_client import AsyncQdrantClient

from app.ops.snapshots import SnapshotError, SnapshotManager
from app.services.vectors import SCHEMA_VERSION, VectorIndex
from tests.app.ops.qdrant_stub import QdrantStub

API_KEY = "qdrant-test-key"


def _collection_info() -> dict:
    async def build() -> dict:
        client = AsyncQdrantClient(location=":memory:")
        await VectorIndex(client, collection="pages").ensure_collection()
        info = await client.get_collection("pages")  # via the alias: any schema
        await client.close()
        return info.model_dump(mode="json", exclude_none=True)

    return asyncio.run(build())


@pytest.fixture
def nodes():
    info = _collection_info()
    stubs = [QdrantStub(api_key=API_KEY, collection_info=info, snapshot_bytes=6 * 1024 * 1024 + 123) for _ in range(2)]
    yield stubs
    for stub in stubs:
        stub.close()


@pytest.fixture
def s3(seaweed_s3, s3_buckets):
    return boto3.client(
        "s3",
        endpoint_url=seaweed_s3.url,
        region_name=seaweed_s3.region,
        aws_access_key_id=seaweed_s3.access_key,
        aws_secret_access_key=seaweed_s3.secret_key,
    )


def _manager(nodes, s3, bucket, **kwargs) -> SnapshotManager:
    options = {
        "nodes": [n.url for n in nodes],
        "api_key": API_KEY,
        "alias": "pages",
        "s3": s3,
        "bucket": bucket,
        "sse": "s3",
        "part_size_mb": 5,
        "keep_last": 2,
        "max_age_days": 30,
    }
    options.update(kwargs)
    return SnapshotManager(**options)


def test_create_uploads_every_node_multipart_encrypted_and_cleans_nodes(nodes, s3, s3_buckets):
    manager = _manager(nodes, s3, s3_buckets.audit)
    manifest = manager.create()
    assert manifest.collection == "pages_v1" and manifest.schema_version == SCHEMA_VERSION
    assert [n.node for n in manifest.nodes] == [n.url for n in nodes]
    for stub, snap in zip(nodes, manifest.nodes, strict=True):
        head = s3.head_object(Bucket=s3_buckets.audit, Key=snap.key)
        assert head["ContentLength"] == snap.size == 6 * 1024 * 1024 + 123
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ETag"].strip('"').endswith("-2")  # two parts: multipart upload really happened
        assert stub.snapshots == {} and stub.deleted == [snap.snapshot]
    runs = manager.runs()
    assert [r.stamp for r in runs] == [manifest.stamp]


def test_prune_keeps_newest_and_respects_age(nodes, s3, s3_buckets):
    manager = _manager(nodes, s3, s3_buckets.audit)
    stamps = [manager.create().stamp for _ in range(3)]
    assert manager.prune() == [stamps[0]]
    assert [r.stamp for r in manager.runs()] == [stamps[2], stamps[1]]
    later = datetime.now(UTC) + timedelta(days=31)
    assert manager.prune(now=later) == [stamps[1]]  # too old, but the newest always stays
    assert [r.stamp for r in manager.runs()] == [stamps[2]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_buckets.audit).get("Contents", [])]
    assert keys and all(stamps[2] in key for key in keys)


def test_restore_fetches_presigned_url_verifies_checksum_and_switches_alias(nodes, s3, s3_buckets):
    manager = _manager(nodes, s3, s3_buckets.audit)
    manifest = manager.create()
    snapshot_data = [s3.get_object(Bucket=s3_buckets.audit, Key=n.key)["Body"].read() for n in manifest.nodes]
    chosen = manager.restore(manifest.stamp, collection="pages_restored")
    assert chosen.stamp == manifest.stamp
    for stub, data in zip(nodes, snapshot_data, strict=True):
        assert stub.restored["pages_restored"] == data
    assert nodes[0].aliases["pages"] == "pages_restored"


def test_restore_errors_are_clear(nodes, s3, s3_buckets):
    manager = _manager(nodes, s3, s3_buckets.audit)
    with pytest.raises(SnapshotError, match="no snapshots under"):
        manager.restore()
    manager.create()
    with pytest.raises(SnapshotError, match="'nope' not found"):
        manager.restore("nope")
    with pytest.raises(SnapshotError, match="has 2 node snapshots but 1 nodes"):
        _manager(nodes[:1], s3, s3_buckets.audit).restore()


def test_wrong_api_key_is_refused(nodes, s3, s3_buckets):
    with pytest.raises(Exception, match=r"(?i)api key|401|unauthor"):
        _manager(nodes, s3, s3_buckets.audit, api_key="wrong").create()


def test_kms_upload_request_shape_on_moto(nodes):
    with mock_aws():
        kms = boto3.client("kms", region_name="eu-west-1")
        key_id = kms.create_key(Description="snapshots")["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="snaps", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        manifest = _manager(nodes, s3, "snaps", sse="kms", kms_key_id=key_id).create()
        head = s3.head_object(Bucket="snaps", Key=manifest.nodes[0].key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
        manifest_head = s3.head_object(Bucket="snaps", Key=f"qdrant/pages/{manifest.stamp}/manifest.json")
        assert manifest_head["ServerSideEncryption"] == "aws:kms"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"nodes": []}, "at least one"), ({"sse": "kms"}, "kms_key_id is required"), ({"keep_last": 0}, "keep_last=0")],
)
def test_bad_configuration(kwargs, message):
    base = {"nodes": ["http://q:6333"], "api_key": None, "alias": "pages", "s3": None, "bucket": "b", "sse": "s3"}
    with pytest.raises(ValueError, match=message):
        SnapshotManager(**{**base, **kwargs})
