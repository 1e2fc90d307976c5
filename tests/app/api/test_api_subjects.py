"""Data-subject requests end to end on the real parts (SeaweedFS, redis-server, qdrant local):
alice and bob upload and are indexed and searched; alice's data is listed, exported and erased; nothing of
alice remains in S3, Qdrant or Redis, bob's data is untouched, and every call left a started/finished audit pair."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from qdrant_client import models

# Counters keyed by `sub` that hold no content and expire on their own (rate-limit window, daily budget, quota
# period): documented in docs/runbooks/data-lifecycle-requests.md, not erased.
COUNTER_PREFIXES = (b"visionrag:rl", b"visionrag:budget", b"visionrag:quota")


async def _upload(api, auth, pdf_bytes, sub: str, name: str) -> dict:
    response = await api.client.post(
        "/index", files=[("files", (name, pdf_bytes(2), "application/pdf"))], headers=auth(sub)
    )
    assert response.status_code == 202, response.text
    return response.json()["jobs"][0]


async def _redis_dump(redis) -> dict[bytes, bytes]:
    """Every key with its value rendered as bytes (strings, hashes, lists, sorted sets)."""
    out: dict[bytes, bytes] = {}
    async for key in redis.scan_iter(match="*", count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value = await redis.get(key) or b""
        elif kind == "hash":
            value = b"|".join(k + b"=" + v for k, v in (await redis.hgetall(key)).items())
        elif kind == "list":
            value = b"|".join(await redis.lrange(key, 0, -1))
        elif kind == "zset":
            value = b"|".join(await redis.zrange(key, 0, -1))
        else:
            value = b""
        out[key] = value
    return out


def _audit(seaweed_s3, bucket: str) -> list[dict[str, Any]]:
    return [json.loads(seaweed_s3.read(bucket, key)) for key in sorted(seaweed_s3.object_names(bucket))]


async def _owned_points(api, owner: str) -> int:
    flt = models.Filter(must=[models.FieldCondition(key="owner", match=models.MatchValue(value=owner))])
    return (await api.services.qdrant.count("pages", count_filter=flt, exact=True)).count


async def test_list_export_and_erase_one_subject(api, auth, pdf_bytes, seed, seaweed_s3, s3_buckets) -> None:
    services = api.services
    alice_jobs = [await _upload(api, auth, pdf_bytes, "alice", f"alice-{n}.pdf") for n in (1, 2)]
    bob_job = await _upload(api, auth, pdf_bytes, "bob", "bob.pdf")
    alice_docs = sorted(j["document_id"] for j in alice_jobs)
    for doc in alice_docs:
        await seed(services, doc, [f"alice page {doc} a", f"alice page {doc} b"], owner="alice")
    await seed(services, bob_job["document_id"], ["bob page a", "bob page b"], owner="bob")
    await services.jobs.dead_letter(
        "dead-alice",
        request={"owner": "alice", "document_id": alice_docs[0], "filename": "alice-1.pdf"},
        error="x",
        attempts=3,
    )
    await services.jobs.dead_letter("dead-bob", request={"owner": "bob"}, error="x", attempts=3)
    for who, query in (("alice", "alice page"), ("bob", "bob page"), ("carol", "alice page")):
        assert (await api.client.get("/search", params={"q": query, "k": 5}, headers=auth(who))).status_code == 200
    bob_objects = seaweed_s3.object_names(s3_buckets.pages, f"uploads/{bob_job['document_id']}/") + (
        seaweed_s3.object_names(s3_buckets.pages, f"pages/{bob_job['document_id']}/")
    )
    admin = auth("dpo", ["admin"])

    # Only admins.
    assert (await api.client.get("/admin/subjects/alice/data", headers=auth("alice"))).status_code == 403

    listed = await api.client.get("/admin/subjects/alice/data", headers=admin)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [d["document_id"] for d in body["documents"]] == alice_docs
    assert all(d["found_in"] == ["manifest", "vectors", "jobs"] for d in body["documents"])
    assert body["summary"] == {
        "subject": "alice",
        "documents": 2,
        "objects": 2 * 4,  # upload + manifest + 2 page images each
        "vectors": 4,
        "jobs": 2,
        "dead_letters": 1,
        "cache_entries": body["summary"]["cache_entries"],
    }
    assert body["summary"]["cache_entries"] >= 2  # alice's and carol's cached searches quote alice's pages
    assert {j["filename"] for j in body["jobs"]} == {"alice-1.pdf", "alice-2.pdf"}

    export = await api.client.get("/admin/subjects/alice/export", headers=admin)
    assert export.status_code == 200, export.text
    exported = export.json()
    for document in exported["documents"]:
        assert [p["page"] for p in document["pages"]] == [1, 2]
        assert document["manifest"]["owner"] == "alice"
        assert sorted(document["object_urls"]) == document["objects"]
        for key, url in document["object_urls"].items():
            fetched = await asyncio.to_thread(httpx.get, url)
            assert fetched.status_code == 200 and fetched.content == seaweed_s3.read(s3_buckets.pages, key)

    before = await _redis_dump(services.redis)
    erased = await api.client.delete("/admin/subjects/alice", headers=admin)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["complete"] is True and report["remaining"] == {}
    assert sorted(report["documents"]) == alice_docs
    assert (report["vectors"], report["objects"], report["jobs"], report["dead_letters"]) == (4, 8, 2, 1)

    # Nothing of alice anywhere: S3, Qdrant, Redis (keys and values).
    for doc in alice_docs:
        assert seaweed_s3.object_names(s3_buckets.pages, f"uploads/{doc}/") == []
        assert seaweed_s3.object_names(s3_buckets.pages, f"pages/{doc}/") == []
        assert await services.vectors.count(document_id=doc) == 0
    assert await _owned_points(api, "alice") == 0
    after = await _redis_dump(services.redis)
    alice_marks = [b"alice", *(d.encode() for d in alice_docs), *(j["job_id"].encode() for j in alice_jobs)]
    for key, value in after.items():
        if key.startswith(COUNTER_PREFIXES):
            continue
        assert not any(mark in key or mark in value for mark in alice_marks), (key, value[:200])
    # The same check on the state before the erasure finds alice (the check can fail).
    assert any(b"alice" in v for k, v in before.items() if not k.startswith(COUNTER_PREFIXES))

    # bob untouched: objects, vectors, job record, dead letter.
    bob_now = seaweed_s3.object_names(s3_buckets.pages, f"uploads/{bob_job['document_id']}/") + (
        seaweed_s3.object_names(s3_buckets.pages, f"pages/{bob_job['document_id']}/")
    )
    assert bob_now == bob_objects and len(bob_now) == 4
    assert await _owned_points(api, "bob") == 2
    assert (await services.jobs.get(bob_job["job_id"])) is not None
    assert [r["job_id"] for r in await services.jobs.dead_letters()] == ["dead-bob"]
    bob_view = (await api.client.get("/admin/subjects/bob/data", headers=admin)).json()["summary"]
    assert (bob_view["documents"], bob_view["vectors"], bob_view["jobs"]) == (1, 2, 1)

    # A second erasure finds nothing and says so.
    again = (await api.client.delete("/admin/subjects/alice", headers=admin)).json()
    assert again["complete"] is True and again["documents"] == []

    events = _audit(seaweed_s3, s3_buckets.audit)
    subject_events = [
        (e["action"], e["outcome"], e["target"]) for e in events if e["action"].startswith("admin.subject")
    ]
    for action in ("admin.subject.list", "admin.subject.export", "admin.subject.delete"):
        assert (action, "started", "alice") in subject_events and (action, "succeeded", "alice") in subject_events
    deletes = [e for e in events if e["action"] == "admin.subject.delete" and e["outcome"] == "succeeded"]
    assert deletes[0]["actor"] == "dpo" and deletes[0]["details"]["vectors"] == 4


async def test_subject_routes_refuse_to_act_without_the_audit_log(
    settings_factory, api_factory, auth, pdf_bytes, seed, seaweed_s3, s3_buckets
) -> None:
    async with api_factory(settings_factory(s3_bucket_audit="vr-audit:unwritable")) as api:
        await seed(api.services, "d" * 32, ["alice page"], owner="alice")
        response = await api.client.delete("/admin/subjects/alice", headers=auth("dpo", ["admin"]))
        assert response.status_code == 503 and "audit" in response.json()["detail"]
        assert await api.services.vectors.count(document_id="d" * 32) == 1  # nothing was deleted
        assert seaweed_s3.object_names(s3_buckets.pages, f"pages/{'d' * 32}/") != []
