"""`python -m app.ops.drill` on real parts: a live collection in qdrant-client's local mode, snapshots created by
`python -m app.ops.snapshots create` through the Qdrant REST double into SeaweedFS, and restored from a presigned
SeaweedFS URL with its checksum into a real (local-mode) scratch collection the drill then queries.

The double's snapshot bytes are the live collection's points (the local mode has no snapshot format of its own);
everything the drill judges (counts, exact top-k searches, the cleanup) runs on the real qdrant-client engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from app.ops import drill, snapshots
from app.ops.settings import get_ops_settings
from app.services.layout import COLUMNS, ORIGINAL, ROWS, vectors_config
from tests.app.ops.ops_env import OpsEnv, ops_env
from tests.app.ops.qdrant_stub import QdrantStub

__all__ = ["ops_env"]
API_KEY = "drill-test-key"
DIM = 16
POINTS = 60
LIVE = "pages_v2"


class LocalQdrant:
    """The live collection in local mode, and the snapshot/recover hooks the REST double calls."""

    def __init__(self) -> None:
        self.client = QdrantClient(location=":memory:")
        self.config = vectors_config(dim=DIM, on_disk=False, quantization="none", datatype="float32")
        self.client.create_collection(LIVE, vectors_config=self.config, metadata={"schema_version": 2})
        self.client.update_collection_aliases(
            change_aliases_operations=[
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=LIVE, alias_name="pages"))
            ]
        )
        rng = np.random.default_rng(7)
        points = []
        for i in range(POINTS):
            vectors = {name: rng.standard_normal((3, DIM)).tolist() for name in (ORIGINAL, ROWS, COLUMNS)}
            points.append(models.PointStruct(id=i + 1, vector=vectors, payload={"document_id": f"d{i // 3}"}))
        self.client.upsert(LIVE, points=points, wait=True)
        self.keep_on_recover = 1.0  # < 1: a damaged snapshot (the restore loses points)

    def snapshot(self, collection: str) -> bytes:
        points, _ = self.client.scroll(collection, limit=10_000, with_vectors=True, with_payload=True)
        return json.dumps([{"id": p.id, "vector": p.vector, "payload": p.payload} for p in points]).encode()

    def recover(self, collection: str, data: bytes) -> None:
        records = json.loads(data)
        records = records[: int(len(records) * self.keep_on_recover)]
        self.client.create_collection(collection, vectors_config=self.config)
        self.client.upsert(collection, points=[models.PointStruct(**r) for r in records], wait=True)

    def info(self) -> dict[str, Any]:
        return self.client.get_collection(LIVE).model_dump(mode="json", exclude_none=True)

    def collections(self) -> set[str]:
        return {c.name for c in self.client.get_collections().collections}


@pytest.fixture
def live() -> Iterator[LocalQdrant]:
    local = LocalQdrant()
    yield local
    local.client.close()


@pytest.fixture
def node(live: LocalQdrant, ops_env: OpsEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[QdrantStub]:
    stub = QdrantStub(
        api_key=API_KEY,
        collection_info=live.info(),
        snapshot_bytes=0,
        snapshot_source=live.snapshot,
        on_recover=live.recover,
    )
    stub.aliases, stub.collections = {"pages": LIVE}, {LIVE}
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
    yield stub
    stub.close()


def _drill(capsys: pytest.CaptureFixture[str], live: LocalQdrant, *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = drill.main(["--seed", "1", *argv], client=live.client)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_drill_restores_compares_reports_and_cleans_up(
    live: LocalQdrant, node: QdrantStub, ops_env: OpsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert snapshots.main(["create"]) == 0
    code, report = _drill(capsys, live)
    assert code == 0, report
    assert report["passed"] is True and report["problems"] == []
    assert (report["snapshot_points"], report["restored_points"], report["live_points"]) == (POINTS, POINTS, POINTS)
    assert report["queries"] == 20 and report["mean_overlap"] == 1.0 and report["worst_overlap"] == 1.0
    assert report["live_collection"] == LIVE and report["scratch_collection"].startswith("pages_drill_")
    # The restore really happened (from SeaweedFS, checksum verified by the double) and is gone again.
    assert report["scratch_collection"] in node.restored and report["cleaned_up"] is True
    assert live.collections() == {LIVE} and node.aliases == {"pages": LIVE}
    events = [(e["action"], e["outcome"]) for e in ops_env.audit_events()]
    assert events[-2:] == [("ops.drill", "started"), ("ops.drill", "succeeded")]
    finished = ops_env.audit_events()[-1]["details"]
    assert finished["passed"] is True and finished["restored_points"] == POINTS and finished["cleaned_up"] is True


def test_a_damaged_snapshot_fails_the_drill_and_still_cleans_up(
    live: LocalQdrant, node: QdrantStub, ops_env: OpsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert snapshots.main(["create"]) == 0
    live.keep_on_recover = 0.5
    code, report = _drill(capsys, live)
    assert code == 1 and report["passed"] is False
    assert report["restored_points"] == POINTS // 2
    assert any("the snapshot recorded 60" in p for p in report["problems"])
    assert any("drift" in p for p in report["problems"])
    assert report["cleaned_up"] is True and live.collections() == {LIVE}
    assert ops_env.audit_events()[-1]["outcome"] == "failed"


def test_queries_that_disagree_fail_the_drill(
    live: LocalQdrant, node: QdrantStub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert snapshots.main(["create"]) == 0
    # The live collection changed since the snapshot: most pages re-embedded (other vectors, same ids and count).
    rng = np.random.default_rng(99)
    changed = [
        models.PointVectors(
            id=i, vector={name: rng.standard_normal((3, DIM)).tolist() for name in (ORIGINAL, ROWS, COLUMNS)}
        )
        for i in range(1, POINTS + 1)
    ]
    live.client.update_vectors(LIVE, points=changed, wait=True)
    code, report = _drill(capsys, live)
    assert code == 1 and report["live_points"] == report["restored_points"] == POINTS
    assert report["mean_overlap"] < 0.9 and any("overlap" in p for p in report["problems"])
    assert live.collections() == {LIVE}


def test_an_error_mid_drill_is_reported_and_the_scratch_collection_removed(
    live: LocalQdrant, node: QdrantStub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert snapshots.main(["create"]) == 0

    def broken(self: drill.Drill, report: drill.DrillReport) -> None:
        raise RuntimeError("qdrant went away")

    monkeypatch.setattr(drill.Drill, "_compare", broken)
    code, report = _drill(capsys, live)
    assert code == 1 and report["problems"] == ["drill failed: RuntimeError: qdrant went away"]
    assert report["cleaned_up"] is True and live.collections() == {LIVE}


def test_bad_input_exits_2(
    live: LocalQdrant, node: QdrantStub, ops_env: OpsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _drill(capsys, live)  # no snapshot yet
    assert code == 2
    assert snapshots.main(["create"]) == 0
    code, _ = _drill(capsys, live, "--stamp", "nope")
    assert code == 2
    assert live.collections() == {LIVE}
    with pytest.raises(SystemExit) as exited:
        drill.main(["--k", "0"], client=live.client)
    assert exited.value.code == 2
    failed = [e for e in ops_env.audit_events() if e["action"] == "ops.drill" and e["outcome"] == "failed"]
    assert len(failed) == 2 and all(e["details"]["exit_code"] == 2 for e in failed)
