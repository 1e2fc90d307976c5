"""POST /index against SeaweedFS + Redis: good PDFs are stored and queued; every bad upload stores NOTHING."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from app.api.uploads import sanitize_filename
from app.services.jobs import QUEUE_NAME


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/pdf")) for name, data in items]


def _assert_nothing_stored(seaweed_s3, s3_buckets) -> None:
    assert seaweed_s3.object_names(s3_buckets.pages) == []
    assert seaweed_s3.object_names(s3_buckets.audit) == []


async def test_valid_upload_is_stored_audited_and_queued(api, auth, pdf_bytes, seaweed_s3, s3_buckets) -> None:
    pdf = pdf_bytes(2)
    response = await api.client.post(
        "/index", files=_files(("../../etc/Report Q1.pdf", pdf), ("second.pdf", pdf_bytes(1))), headers=auth("alice")
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["job_id"] == body["jobs"][0]["job_id"] and len(body["jobs"]) == 2
    first = body["jobs"][0]
    assert first["filename"] == "Report Q1.pdf"
    keys = seaweed_s3.object_names(s3_buckets.pages)
    assert f"uploads/{first['document_id']}/Report Q1.pdf" in keys
    assert f"uploads/{first['document_id']}/manifest.json" in keys
    assert seaweed_s3.read(s3_buckets.pages, f"uploads/{first['document_id']}/Report Q1.pdf") == pdf
    manifest = json.loads(seaweed_s3.read(s3_buckets.pages, f"uploads/{first['document_id']}/manifest.json"))
    assert manifest["owner"] == "alice" and manifest["pages"] == 2 and manifest["job_id"] == first["job_id"]
    # Queued in arq and visible in the shared job store; only to its owner.
    assert await api.services.redis.zcard(QUEUE_NAME) == 2
    job = await api.client.get(f"/jobs/{first['job_id']}", headers=auth("alice"))
    assert job.status_code == 200 and job.json()["state"] == "queued" and "owner" not in job.json()
    assert (await api.client.get(f"/jobs/{first['job_id']}", headers=auth("eve"))).status_code == 404
    audit = seaweed_s3.object_names(s3_buckets.audit)
    assert len(audit) == 1
    event = json.loads(seaweed_s3.read(s3_buckets.audit, audit[0]))
    assert event["actor"] == "alice" and event["action"] == "document.upload" and event["request_id"]


@pytest.mark.parametrize(
    ("case", "status"),
    [("not a pdf", 415), ("corrupt", 422), ("too many pages", 422), ("too many files", 413), ("empty form", 422)],
)
async def test_bad_uploads_are_refused_and_nothing_is_stored(
    api, auth, pdf_bytes, seaweed_s3, s3_buckets, case, status
) -> None:
    good = pdf_bytes(1)
    files = {
        "not a pdf": _files(("ok.pdf", good), ("evil.pdf", b"MZ\x90\x00 this is an executable" * 10)),
        "corrupt": _files(("ok.pdf", good), ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 200)),
        "too many pages": _files(("long.pdf", pdf_bytes(api.settings.max_pdf_pages + 1))),
        "too many files": _files(*[(f"f{i}.pdf", good) for i in range(api.settings.max_upload_files + 1)]),
        "empty form": [("other", ("x.txt", b"hello", "text/plain"))],
    }[case]
    response = await api.client.post("/index", files=files, headers=auth())
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    _assert_nothing_stored(seaweed_s3, s3_buckets)
    assert await api.services.redis.zcard(QUEUE_NAME) == 0


async def test_declared_oversize_is_refused_before_reading_the_body(api, auth, seaweed_s3, s3_buckets) -> None:
    sent = 0

    async def body():
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * 65536

    limit = api.settings.max_upload_bytes * api.settings.max_upload_files + 65536
    headers = {**auth(), "Content-Type": "multipart/form-data; boundary=abc", "Content-Length": str(limit + 1)}
    response = await api.client.post("/index", content=body(), headers=headers)
    assert response.status_code == 413
    assert sent <= 1  # refused on the header alone
    _assert_nothing_stored(seaweed_s3, s3_buckets)


async def test_streamed_oversize_file_is_cut_off_mid_stream(api, auth, seaweed_s3, s3_buckets) -> None:
    chunk = 64 * 1024
    total_chunks = 4 * api.settings.max_upload_bytes // chunk  # 4x the per-file cap, within the total cap
    sent = 0

    async def body():
        nonlocal sent
        yield (
            b'--abc\r\nContent-Disposition: form-data; name="files"; filename="big.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
        )
        for _ in range(total_chunks):
            sent += 1
            yield b"0" * chunk
        yield b"\r\n--abc--\r\n"

    headers = {**auth(), "Content-Type": "multipart/form-data; boundary=abc"}
    response = await api.client.post("/index", content=body(), headers=headers)
    assert response.status_code == 413
    assert "exceeds" in response.json()["detail"]
    assert sent < total_chunks / 2, f"read {sent} of {total_chunks} chunks before refusing"
    _assert_nothing_stored(seaweed_s3, s3_buckets)


async def test_non_multipart_is_415(api, auth) -> None:
    response = await api.client.post(
        "/index", content=b"%PDF-1.7", headers={**auth(), "Content-Type": "application/pdf"}
    )
    assert response.status_code == 415


def test_sanitize_filename() -> None:
    assert sanitize_filename("../../etc/passwd") == "passwd.pdf"
    assert sanitize_filename("C:\\Users\\x\\Report.PDF") == "Report.pdf"
    assert sanitize_filename("a\x00b\x1b[31m.pdf") == "ab_31m.pdf"
    assert sanitize_filename("   ") == "document.pdf"
    assert sanitize_filename("..") == "document.pdf"
    assert sanitize_filename("x" * 500 + ".pdf").endswith(".pdf") and len(sanitize_filename("x" * 500)) <= 120
    assert "/" not in sanitize_filename("a/b/c;rm -rf.pdf")


class _Clamd:
    def __init__(self, verdict: bytes) -> None:
        self.verdict = verdict
        self.scanned = 0
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = await reader.readuntil(b"\0")
        if command == b"zPING\0":
            writer.write(b"PONG\0")
        else:
            while True:
                (size,) = struct.unpack(">I", await reader.readexactly(4))
                if size == 0:
                    break
                self.scanned += len(await reader.readexactly(size))
            writer.write(self.verdict)
        await writer.drain()
        writer.close()


@pytest.mark.parametrize(("verdict", "status"), [(b"stream: Eicar-Test-Signature FOUND\0", 422), (None, 503)])
async def test_malware_scan_rejects_and_stores_nothing(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets, closed_port, verdict, status
) -> None:
    clamd = _Clamd(verdict or b"")
    port = closed_port
    if verdict is not None:
        server = await asyncio.start_server(clamd.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    try:
        settings = settings_factory(clamd_host="127.0.0.1", clamd_port=port, clamd_timeout_s=2)
        async with api_factory(settings) as api:
            response = await api.client.post("/index", files=_files(("a.pdf", pdf_bytes(1))), headers=auth())
    finally:
        if verdict is not None:
            server.close()
    assert response.status_code == status, response.text
    if verdict is not None:
        assert clamd.scanned > 0
    _assert_nothing_stored(seaweed_s3, s3_buckets)


async def test_clean_scan_lets_the_upload_through(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    clamd = _Clamd(b"stream: OK\0")
    server = await asyncio.start_server(clamd.handle, "127.0.0.1", 0)
    try:
        settings = settings_factory(clamd_host="127.0.0.1", clamd_port=server.sockets[0].getsockname()[1])
        async with api_factory(settings) as api:
            response = await api.client.post("/index", files=_files(("a.pdf", pdf_bytes(1))), headers=auth())
    finally:
        server.close()
    assert response.status_code == 202
    assert len(seaweed_s3.object_names(s3_buckets.pages)) == 2
