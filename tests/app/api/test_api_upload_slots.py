"""POST /index under UPLOAD_MAX_CONCURRENT (app/api/upload_slots.py), against SeaweedFS + Redis.

The pod's /tmp is sized for this many uploads per process (infra/workloads/uploads.py): one more is refused with
503 + Retry-After before its body is read and stores nothing, and a slot comes back however an upload ends
(accepted, refused with 4xx, the client gone, an exception), or the process would refuse every upload after a few.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from app.services.jobs import QUEUE_NAME

BOUNDARY = "slotsboundary"
CAPACITY = 2


def _head(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        f"Content-Type: application/pdf\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def _headers(auth: Any) -> dict[str, str]:
    return {**auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.fixture
def slot_settings(settings_factory: Any) -> Any:
    return settings_factory(upload_max_concurrent=CAPACITY, upload_queue_timeout_s=0.3)


def _stored_names(seaweed_s3: Any, s3_buckets: Any) -> list[str]:
    return seaweed_s3.object_names(s3_buckets.pages)


async def test_the_upload_over_the_cap_is_503_before_its_body_and_stores_nothing(
    slot_settings, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    pdf = pdf_bytes(1)
    go = asyncio.Event()

    async def held(index: int) -> AsyncIterator[bytes]:
        yield _head(f"held-{index}.pdf")
        await go.wait()  # the upload stays in flight (its slot held) until the test lets it finish
        yield pdf + TAIL

    extra_read = 0

    async def extra() -> AsyncIterator[bytes]:
        nonlocal extra_read
        for chunk in (_head("refused.pdf"), pdf, TAIL):
            extra_read += 1
            yield chunk

    async with api_factory(slot_settings) as api:
        slots = api.services.upload_slots
        in_flight = [
            asyncio.create_task(api.client.post("/index", content=held(i), headers=_headers(auth)))
            for i in range(CAPACITY)
        ]
        await _until(lambda: slots.in_use == CAPACITY)

        refused = await api.client.post("/index", content=extra(), headers=_headers(auth))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"].isdigit() and int(refused.headers["Retry-After"]) >= 1
        assert "upload capacity busy" in refused.json()["detail"]
        assert refused.headers["Connection"] == "close"
        assert extra_read == 0, "the refused upload's body was read"
        assert slots.in_use == CAPACITY

        go.set()
        accepted = await asyncio.gather(*in_flight)
        assert [r.status_code for r in accepted] == [202] * CAPACITY, [r.text for r in accepted]
        assert slots.in_use == 0

        names = _stored_names(seaweed_s3, s3_buckets)
        assert not [n for n in names if n.endswith("refused.pdf")], names
        assert sorted(n.rsplit("/", 1)[-1] for n in names if not n.endswith("manifest.json")) == [
            f"held-{i}.pdf" for i in range(CAPACITY)
        ]
        assert await api.services.redis.zcard(QUEUE_NAME) == CAPACITY


async def test_a_waiting_upload_gets_the_slot_a_finished_one_frees(
    settings_factory, api_factory, auth, pdf_bytes
) -> None:
    pdf = pdf_bytes(1)
    go = asyncio.Event()

    async def held() -> AsyncIterator[bytes]:
        yield _head("first.pdf")
        await go.wait()
        yield pdf + TAIL

    async with api_factory(settings_factory(upload_max_concurrent=1, upload_queue_timeout_s=5)) as api:
        first = asyncio.create_task(api.client.post("/index", content=held(), headers=_headers(auth)))
        await _until(lambda: api.services.upload_slots.in_use == 1)
        second = asyncio.create_task(
            api.client.post("/index", content=_head("second.pdf") + pdf + TAIL, headers=_headers(auth))
        )
        await asyncio.sleep(0.1)
        assert not second.done()  # waiting within UPLOAD_QUEUE_TIMEOUT_S, not refused at once
        go.set()
        assert (await first).status_code == 202
        assert (await second).status_code == 202
        assert api.services.upload_slots.in_use == 0


@pytest.mark.parametrize("case", ["not a pdf", "corrupt", "streamed oversize", "too many files"])
async def test_a_slot_is_released_when_the_upload_is_refused(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets, case
) -> None:
    settings = settings_factory(upload_max_concurrent=1, upload_queue_timeout_s=0.2)
    good = pdf_bytes(1)
    body = {
        "not a pdf": _head("evil.pdf") + b"MZ\x90\x00 an executable" * 10 + TAIL,
        "corrupt": _head("broken.pdf") + b"%PDF-1.7\n" + b"\x00garbage" * 200 + TAIL,
        "streamed oversize": _head("big.pdf") + b"%PDF-1.7\n" + b"0" * (settings.max_upload_bytes + 1) + TAIL,
        "too many files": b"\r\n".join(_head(f"f{i}.pdf") + good for i in range(settings.max_upload_files + 1)) + TAIL,
    }[case]
    async with api_factory(settings) as api:
        for _ in range(2):  # the same refusal twice: a leaked slot would make the second one 503
            response = await api.client.post("/index", content=body, headers=_headers(auth))
            assert response.status_code in (413, 415, 422), (case, response.status_code, response.text)
            assert api.services.upload_slots.in_use == 0
        assert _stored_names(seaweed_s3, s3_buckets) == []
        ok = await api.client.post("/index", content=_head("ok.pdf") + good + TAIL, headers=_headers(auth))
        assert ok.status_code == 202, ok.text


async def _asgi_post(api: Any, auth: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST /index straight through the ASGI interface, so the server side of a dropped connection can be played:
    `messages` is what receive() hands the app, one per call."""
    headers = [(k.lower().encode(), v.encode()) for k, v in {**_headers(auth), "host": "testserver"}.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/index",
        "raw_path": b"/index",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.7", 40000),
        "server": ("testserver", 80),
    }
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not pending:
            await asyncio.sleep(3600)  # never: the app must not read past a disconnect
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # Starlette raises ClientDisconnect out of the app (no one is left to answer); the slot is what matters here.
    with contextlib.suppress(ClientDisconnect):
        await api.app(scope, receive, send)
    return sent


async def test_a_slot_is_released_when_the_client_disconnects_mid_upload(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    async with api_factory(settings_factory(upload_max_concurrent=1, upload_queue_timeout_s=0.2)) as api:
        for _ in range(2):
            await asyncio.wait_for(
                _asgi_post(
                    api,
                    auth,
                    [
                        {"type": "http.request", "body": _head("gone.pdf") + b"%PDF-1.7\n", "more_body": True},
                        {"type": "http.disconnect"},
                    ],
                ),
                timeout=10,
            )
            assert api.services.upload_slots.in_use == 0
        assert _stored_names(seaweed_s3, s3_buckets) == []
        ok = await api.client.post("/index", content=_head("ok.pdf") + pdf_bytes(1) + TAIL, headers=_headers(auth))
        assert ok.status_code == 202, ok.text


async def test_a_slot_is_released_when_the_upload_fails_with_an_exception(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    class Broken(Exception):
        pass

    async def breaks() -> AsyncIterator[bytes]:
        yield _head("half.pdf") + b"%PDF-1.7\n"
        raise Broken("the body stream failed")

    async with api_factory(settings_factory(upload_max_concurrent=1, upload_queue_timeout_s=0.2)) as api:
        for _ in range(2):
            # An unexpected exception inside the upload: the app answers 500 (request id, no trace).
            response = await api.client.post("/index", content=breaks(), headers=_headers(auth))
            assert response.status_code == 500, response.text
            assert api.services.upload_slots.in_use == 0
        assert _stored_names(seaweed_s3, s3_buckets) == []
        ok = await api.client.post("/index", content=_head("ok.pdf") + pdf_bytes(1) + TAIL, headers=_headers(auth))
        assert ok.status_code == 202, ok.text
