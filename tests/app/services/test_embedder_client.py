"""EmbedderClient's error mapping and batching (the real service is exercised in tests/app/embedder)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from app.services import multivector_wire as wire
from app.services.embedder_client import EmbedderClient, EmbedderRejected, EmbedderUnavailable
from app.services.pooling import PatchSpan


def _client(handler, **kwargs) -> EmbedderClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://embedder")
    return EmbedderClient("http://embedder", client=http, **kwargs)


async def test_binary_images_are_batched_and_decoded():
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == wire.CONTENT_TYPE
        count = request.content.count(b'name="images"')
        calls.append(count)
        items = [
            wire.Multivector(np.full((5, 4), i, np.float32), PatchSpan(start=0, length=4, rows=2, cols=2))
            for i in range(count)
        ]
        return httpx.Response(200, content=wire.encode(items), headers={"content-type": wire.CONTENT_TYPE})

    client = _client(handler, max_batch=2)
    out = await client.embed_images([b"a", b"b", b"c"])
    assert calls == [2, 1]
    assert len(out) == 3 and out[0].patch == PatchSpan(start=0, length=4, rows=2, cols=2)
    assert out[2].vectors.shape == (5, 4)


async def test_json_transport_for_queries():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "application/json"
        return httpx.Response(200, json={"embeddings": [[[1.0, 2.0]], [[3.0, 4.0]]], "patch_spans": [None, None]})

    out = await _client(handler, transport="json").embed_queries(["a", "b"])
    np.testing.assert_array_equal(out[1], [[3.0, 4.0]])


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, EmbedderRejected), (413, EmbedderRejected), (429, EmbedderUnavailable), (503, EmbedderUnavailable)],
)
async def test_status_codes_map_to_retryable_or_not(status, error):
    client = _client(lambda _r: httpx.Response(status, json={"detail": "image too large"}))
    with pytest.raises(error):
        await client.embed_queries(["q"])


async def test_connection_refused_is_unavailable(closed_port):
    client = EmbedderClient(f"http://127.0.0.1:{closed_port}", timeout_s=1)
    with pytest.raises(EmbedderUnavailable):
        await client.embed_queries(["q"])
    assert await client.ping() is False
    await client.aclose()


def test_bad_transport_is_refused():
    with pytest.raises(ValueError, match="transport='xml'"):
        EmbedderClient("http://x", transport="xml")  # type: ignore[arg-type]
