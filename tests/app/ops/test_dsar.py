"""`python -m app.ops.dsar` on the real parts: alice's and bob's documents stored as the api and the worker store
them (manifest + upload + page images in SeaweedFS, vectors in qdrant local, job records, arq keys, a dead letter
and cached responses in redis-server); list and export alice completely, erase her, bob untouched, all audited."""

from __future__ import annotations

import asyncio
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.ops.dsar import main
from app.services.jobs import JobStore
from app.services.storage import PageStorage
from app.services.vectors import PageVectors, VectorIndex
from tests.app.ops.ops_env import OpsEnv, ops_env

__all__ = ["ops_env"]


def _storage(env: OpsEnv) -> PageStorage:
    s3 = env.seaweed
    return PageStorage(
        endpoint=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=env.buckets.pages,
        region=s3.region,
        secure=False,
        sse="s3",
    )


async def _store(env: OpsEnv, owner: str, pages: int = 2) -> dict[str, str]:
    """One document the way POST /index and the worker leave it."""
    doc, job = uuid.uuid4().hex, uuid.uuid4().hex
    storage = _storage(env)
    await storage.put_bytes(f"uploads/{doc}/{owner}.pdf", b"%PDF-1.7 " + owner.encode(), "application/pdf")
    manifest = {"document_id": doc, "filename": f"{owner}.pdf", "owner": owner, "job_id": job, "pages": pages}
    await storage.put_bytes(f"uploads/{doc}/manifest.json", json.dumps(manifest).encode(), "application/json")
    client = AsyncQdrantClient(path=env.qdrant_path)
    index = VectorIndex(client, collection="pages")
    await index.ensure_collection()
    rng = np.random.default_rng(len(owner))
    batch = []
    for page in range(1, pages + 1):
        key = f"pages/{doc}/{page:05d}.jpg"
        await storage.put_bytes(key, b"\xff\xd8\xff" + f"{owner}-{page}".encode(), "image/jpeg")
        v = rng.standard_normal((3, 128)).astype(np.float32)
        batch.append(
            PageVectors(
                document_id=doc,
                page=page,
                original=v,
                rows=v,
                columns=v,
                payload={"owner": owner, "filename": f"{owner}.pdf", "object_key": key},
            )
        )
    await index.upsert_pages(batch)
    await client.close()
    redis = Redis.from_url(env.redis_url)
    jobs = JobStore(redis)
    await jobs.create(job, document_id=doc, filename=f"{owner}.pdf", owner=owner)
    await jobs.finish(job, "succeeded")
    await redis.set(f"arq:result:{job}", f"pickled result of {owner}.pdf")
    await redis.set(f"visionrag:cache:search:v1:{uuid.uuid4().hex}", json.dumps([{"payload": {"document_id": doc}}]))
    await redis.aclose()
    return {"document_id": doc, "job_id": job}


async def _dead_letter(env: OpsEnv, owner: str) -> None:
    redis = Redis.from_url(env.redis_url)
    await JobStore(redis).dead_letter(f"dead-{owner}", request={"owner": owner}, error="boom", attempts=3)
    await redis.aclose()


async def _redis_text(env: OpsEnv) -> str:
    redis = Redis.from_url(env.redis_url)
    parts = []
    async for key in redis.scan_iter(match="*"):
        kind = (await redis.type(key)).decode()
        value: Any = {"string": redis.get, "hash": redis.hgetall}.get(kind)
        content = await value(key) if value else await redis.lrange(key, 0, -1) if kind == "list" else b""
        parts.append(f"{key!r}={content!r}")
    await redis.aclose()
    return "\n".join(parts)


async def _points(env: OpsEnv, owner: str) -> int:
    client = AsyncQdrantClient(path=env.qdrant_path)
    index = VectorIndex(client, collection="pages")
    count = len([p async for p, _ in index.iter_points(owner=owner)])
    await client.close()
    return count


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_list_export_delete_one_subject(ops_env: OpsEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    alice = [asyncio.run(_store(ops_env, "alice")) for _ in range(2)]
    bob = asyncio.run(_store(ops_env, "bob", pages=3))
    asyncio.run(_dead_letter(ops_env, "alice"))
    asyncio.run(_dead_letter(ops_env, "bob"))
    bob_keys = ops_env.seaweed.object_names(ops_env.buckets.pages, f"uploads/{bob['document_id']}/")

    code, listed = _run(capsys, "list", "--subject", "alice")
    assert code == 0
    assert listed["summary"] == {
        "subject": "alice",
        "documents": 2,
        "objects": 8,
        "vectors": 4,
        "jobs": 2,
        "dead_letters": 1,
        "cache_entries": 2,
    }

    archive = tmp_path / "alice.zip"
    code, exported = _run(capsys, "export", "--subject", "alice", "--out", str(archive))
    assert code == 0 and exported["summary"]["documents"] == 2
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
        subject = json.loads(bundle.read("subject.json"))
        for doc in (a["document_id"] for a in alice):
            for key in ops_env.seaweed.object_names(ops_env.buckets.pages, f"uploads/{doc}/") + (
                ops_env.seaweed.object_names(ops_env.buckets.pages, f"pages/{doc}/")
            ):
                assert bundle.read(f"objects/{key}") == ops_env.seaweed.read(ops_env.buckets.pages, key)
    assert len([n for n in names if n.startswith("objects/")]) == 8
    assert all(len(d["pages"]) == 2 and d["manifest"]["owner"] == "alice" for d in subject["documents"])
    assert {j["job_id"] for j in subject["jobs"]} == {a["job_id"] for a in alice}
    assert not any(bob["document_id"] in n for n in names)
    # An existing file is never overwritten.
    with pytest.raises(SystemExit) as exited:
        main(["export", "--subject", "alice", "--out", str(archive)])
    assert exited.value.code == 2

    before = asyncio.run(_redis_text(ops_env))
    assert "alice" in before
    code, deleted = _run(capsys, "delete", "--subject", "alice")
    assert code == 0 and deleted["complete"] is True
    assert (deleted["vectors"], deleted["objects"], deleted["jobs"], deleted["dead_letters"]) == (4, 8, 2, 1)

    for doc in (a["document_id"] for a in alice):
        assert ops_env.seaweed.object_names(ops_env.buckets.pages, f"uploads/{doc}/") == []
        assert ops_env.seaweed.object_names(ops_env.buckets.pages, f"pages/{doc}/") == []
    assert asyncio.run(_points(ops_env, "alice")) == 0
    after = asyncio.run(_redis_text(ops_env))
    for mark in ["alice", *(a["document_id"] for a in alice), *(a["job_id"] for a in alice)]:
        assert mark not in after, mark
    assert asyncio.run(_points(ops_env, "bob")) == 3
    assert ops_env.seaweed.object_names(ops_env.buckets.pages, f"uploads/{bob['document_id']}/") == bob_keys
    assert bob["job_id"] in after and "dead-bob" in after

    events = ops_env.audit_events()
    pairs = [(e["action"], e["outcome"], e["target"]) for e in events]
    for action in ("ops.dsar.list", "ops.dsar.export", "ops.dsar.delete"):
        assert (action, "started", "alice") in pairs and (action, "succeeded", "alice") in pairs
    assert {e["actor"] for e in events} == {"system:serviceaccount:visionrag:ops-test pod/ops-test-pod"}
    done = next(e for e in events if e["action"] == "ops.dsar.delete" and e["outcome"] == "succeeded")
    assert done["details"]["vectors"] == 4 and done["details"]["complete"] is True


def test_bad_subject_is_refused_before_anything_runs(ops_env: OpsEnv) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["delete", "--subject", "*"])
    assert exited.value.code == 2
    assert ops_env.audit_events() == []


def test_delete_refused_when_the_audit_bucket_cannot_be_written(
    ops_env: OpsEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.ops.settings import get_ops_settings

    stored = asyncio.run(_store(ops_env, "alice"))
    monkeypatch.setenv("S3_BUCKET_AUDIT", "vr-audit:unwritable")
    get_ops_settings.cache_clear()
    assert main(["delete", "--subject", "alice"]) == 3
    assert "audit unavailable" in capsys.readouterr().err
    assert asyncio.run(_points(ops_env, "alice")) == 2  # nothing deleted
    assert ops_env.seaweed.object_names(ops_env.buckets.pages, f"pages/{stored['document_id']}/") != []
