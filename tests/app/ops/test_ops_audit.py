"""Every ops command's main() leaves a started + succeeded/failed pair in the audit bucket (real SeaweedFS), with
the process's identity as actor; a command whose audit event cannot be written exits 3 and does nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from qdrant_client import AsyncQdrantClient

from app.core.audit import AuditLog, audited, process_actor
from app.core.resilience import DependencyUnavailable
from app.ops import collection, reindex, snapshots
from app.ops.settings import get_ops_settings
from tests.app.ops.ops_env import OpsEnv, ops_env
from tests.app.ops.qdrant_stub import QdrantStub
from tests.app.ops.test_snapshots import API_KEY, _collection_info

__all__ = ["ops_env"]
ACTOR = "system:serviceaccount:visionrag:ops-test pod/ops-test-pod"


def _pairs(env: OpsEnv) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in env.audit_events()]


async def _collections(path: str) -> list[str]:
    client = AsyncQdrantClient(path=path)
    names = [c.name for c in (await client.get_collections()).collections]
    await client.close()
    return names


def test_collection_and_reindex_commands_are_audited(ops_env: OpsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert collection.main(["migrate"]) == 0
    assert collection.main(["status"]) == 0
    assert reindex.main(["--drop-old"]) == 0
    events = ops_env.audit_events()
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("ops.collection.migrate", "started"),
        ("ops.collection.migrate", "succeeded"),
        ("ops.collection.status", "started"),
        ("ops.collection.status", "succeeded"),
        ("ops.reindex", "started"),
        ("ops.reindex", "succeeded"),
    ]
    assert {e["actor"] for e in events} == {ACTOR} and {e["target"] for e in events} == {"pages"}
    # started and finished share an action id; the closing event carries the result.
    assert events[0]["details"]["action_id"] == events[1]["details"]["action_id"] != events[2]["details"]["action_id"]
    assert events[1]["details"]["created"] is True and events[3]["details"]["points"] == 0
    assert events[5]["details"]["dropped_old"] is True and events[5]["details"]["exit_code"] == 0


def test_a_command_whose_audit_cannot_be_written_does_nothing(
    ops_env: OpsEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("S3_BUCKET_AUDIT", "vr-audit:unwritable")  # a name S3 refuses
    get_ops_settings.cache_clear()
    from app.worker.settings import get_worker_settings

    get_worker_settings.cache_clear()
    assert collection.main(["migrate"]) == 3
    assert "audit unavailable" in capsys.readouterr().err
    assert asyncio.run(_collections(ops_env.qdrant_path)) == []  # the migration never ran


def test_snapshot_commands_are_audited(
    ops_env: OpsEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = QdrantStub(api_key=API_KEY, collection_info=_collection_info(), snapshot_bytes=1024)
    try:
        bucket = ops_env.seaweed.make_bucket(f"vr-snaps-{uuid.uuid4().hex[:12]}")
        for key, value in {
            "QDRANT_NODE_URLS": stub.url,
            "QDRANT_API_KEY": API_KEY,
            "S3_BUCKET_SNAPSHOTS": bucket,
            "S3_SNAPSHOTS_ENDPOINT_URL": ops_env.seaweed.url,
            "SNAPSHOT_SSE": "s3",
            "AWS_ACCESS_KEY_ID": ops_env.seaweed.access_key,
            "AWS_SECRET_ACCESS_KEY": ops_env.seaweed.secret_key,
        }.items():
            monkeypatch.setenv(key, value)
        get_ops_settings.cache_clear()
        assert snapshots.main(["create"]) == 0
        assert snapshots.main(["list"]) == 0
        assert snapshots.main(["restore", "--collection", "pages_restored", "--no-switch-alias"]) == 0
        assert snapshots.main(["restore", "--stamp", "nope"]) == 2
    finally:
        stub.close()
    events = ops_env.audit_events()
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("ops.snapshots.create", "started"),
        ("ops.snapshots.create", "succeeded"),
        ("ops.snapshots.list", "started"),
        ("ops.snapshots.list", "succeeded"),
        ("ops.snapshots.restore", "started"),
        ("ops.snapshots.restore", "succeeded"),
        ("ops.snapshots.restore", "started"),
        ("ops.snapshots.restore", "failed"),
    ]
    created = events[1]["details"]
    assert created["stamp"] and events[5]["details"]["stamp"] == created["stamp"]
    assert events[5]["details"]["collection"] == "pages_restored" and events[5]["details"]["switched_alias"] is False
    assert events[7]["details"]["exit_code"] == 2 and "nope" in events[7]["details"]["error"]
    assert {e["actor"] for e in events} == {ACTOR}


class _Broken:
    async def put_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
        raise ConnectionError("audit bucket down")


def test_audited_records_failures_and_refuses_to_start_unrecorded() -> None:
    ran = []
    with (
        pytest.raises(DependencyUnavailable, match="audit unavailable"),
        audited(AuditLog(_Broken()), actor="a", action="x", target="t"),
    ):
        ran.append(True)
    assert ran == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"AUDIT_ACTOR": "system:serviceaccount:visionrag:snapshots", "HOSTNAME": "snap-1"},
            "system:serviceaccount:visionrag:snapshots pod/snap-1",
        ),
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_ACTOR": "dev", "GITHUB_RUN_ID": "42"},
            "ci:github:o/r:dev:run/42",
        ),
        ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/deployer"}, "aws-role:arn:aws:iam::1:role/deployer"),
    ],
)
def test_process_actor(environ: dict[str, str], expected: str) -> None:
    assert process_actor(environ=environ) == expected
    assert process_actor(environ={}).startswith("local:")
