"""Document lifecycle, job progress over SSE, admin maintenance and the audit trail they leave."""

from __future__ import annotations

import asyncio
import json

import httpx


async def _upload(api, auth, pdf_bytes, sub: str = "alice") -> dict:
    response = await api.client.post(
        "/index", files=[("files", ("doc.pdf", pdf_bytes(2), "application/pdf"))], headers=auth(sub)
    )
    assert response.status_code == 202, response.text
    return response.json()["jobs"][0]


def _audit_actions(seaweed_s3, bucket: str) -> list[tuple[str, str, str]]:
    events = [json.loads(seaweed_s3.read(bucket, key)) for key in seaweed_s3.object_names(bucket)]
    return sorted((e["action"], e["outcome"], e["actor"]) for e in events)


async def test_get_export_and_delete_a_document(api, auth, pdf_bytes, seed, seaweed_s3, s3_buckets) -> None:
    job = await _upload(api, auth, pdf_bytes)
    doc = job["document_id"]
    await seed(api.services, doc, ["page one", "page two"], owner="alice")

    view = await api.client.get(f"/documents/{doc}", headers=auth("alice"))
    assert view.status_code == 200, view.text
    assert view.json()["pages"] == 2 and view.json()["indexed_pages"] == 2 and view.json()["job"]["state"] == "queued"
    assert (await api.client.get(f"/documents/{doc}", headers=auth("mallory"))).status_code == 404
    assert (await api.client.get(f"/documents/{doc}", headers=auth("ops", ["admin"]))).status_code == 200

    export = await api.client.get(f"/documents/{doc}/export", headers=auth("alice"))
    assert export.status_code == 200
    body = export.json()
    assert [p["page"] for p in body["pages"]] == [1, 2]
    assert (await asyncio.to_thread(httpx.get, body["upload_url"])).content == seaweed_s3.read(
        s3_buckets.pages, f"uploads/{doc}/doc.pdf"
    )

    deleted = await api.client.delete(f"/documents/{doc}", headers=auth("alice"))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"document_id": doc, "deleted_vectors": 2, "deleted_objects": 4}
    assert seaweed_s3.object_names(s3_buckets.pages) == []
    assert await api.services.vectors.count(document_id=doc) == 0
    assert (await api.client.get(f"/documents/{doc}", headers=auth("alice"))).status_code == 404
    assert _audit_actions(seaweed_s3, s3_buckets.audit) == [
        ("document.delete", "requested", "alice"),
        ("document.delete", "succeeded", "alice"),
        ("document.export", "succeeded", "alice"),
        ("document.upload", "succeeded", "alice"),
    ]


async def test_delete_refused_when_the_audit_log_is_unavailable(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    async with api_factory(settings_factory()) as api:
        doc = (await _upload(api, auth, pdf_bytes))["document_id"]

        class DownStore:
            async def put_bytes(self, *args, **kwargs):
                raise ConnectionRefusedError("audit store down")

        api.services.audit._writer = DownStore()
        response = await api.client.delete(f"/documents/{doc}", headers=auth("alice"))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("audit unavailable")
    assert f"uploads/{doc}/doc.pdf" in seaweed_s3.object_names(s3_buckets.pages)


async def test_progress_stream_reports_updates_until_done(api, auth, pdf_bytes) -> None:
    job = await _upload(api, auth, pdf_bytes)
    job_id = job["job_id"]

    async def worker() -> None:
        await asyncio.sleep(0.3)
        await api.services.jobs.start(job_id, attempt=1)
        await api.services.jobs.progress(job_id, done=1, total=2, stage="embedding")
        await api.services.jobs.progress(job_id, done=2, total=2, stage="embedding")
        await api.services.jobs.finish(job_id, "succeeded")

    task = asyncio.create_task(worker())
    events: list[tuple[str, dict]] = []
    async with api.client.stream("GET", f"/progress/stream/{job_id}", headers=auth("alice")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                events.append((event, json.loads(line.split(":", 1)[1])))
                if event == "done":
                    break
    await task
    states = [data.get("state") for name, data in events if name == "progress"]
    assert states[0] == "queued" and states[-1] == "succeeded"
    assert any(data.get("pages_done") == 1 for _, data in events)
    assert events[-1] == ("done", {"state": "succeeded"})
    assert (await api.client.get(f"/progress/stream/{job_id}", headers=auth("eve"))).status_code == 404


async def test_cancel_job(api, auth, pdf_bytes) -> None:
    job_id = (await _upload(api, auth, pdf_bytes))["job_id"]
    response = await api.client.post(f"/jobs/{job_id}/cancel", headers=auth("alice"))
    assert response.status_code == 200 and response.json()["state"] == "cancelled"


async def test_admin_actions_are_audited(api, auth, seaweed_s3, s3_buckets) -> None:
    admin = auth("root", ["admin"])
    ensure = await api.client.post("/admin/collection/ensure", headers=admin)
    assert ensure.status_code == 200 and ensure.json()["to_version"] >= 1
    assert (await api.client.post("/admin/cache/flush", headers=admin)).status_code == 200
    assert (await api.client.get("/admin/dead-letters", headers=admin)).json() == []
    reindex = await api.client.post("/admin/reindex", headers=admin)
    assert reindex.status_code == 202
    audit = await api.client.get("/admin/audit", headers=admin)
    assert audit.status_code == 200
    assert {e["action"] for e in audit.json()} >= {"admin.collection.ensure", "admin.cache.flush", "admin.reindex"}
    assert ("admin.audit.read", "succeeded", "root") in _audit_actions(seaweed_s3, s3_buckets.audit)
