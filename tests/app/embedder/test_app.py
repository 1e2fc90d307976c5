"""The embedder HTTP API on the tiny model: transports, limits, image hardening, health before load."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.embedder.app import create_app
from app.embedder.settings import EmbedderSettings
from app.services import multivector_wire as wire
from app.services.pooling import PatchSpan


def _jpeg(size=(120, 160), color=(250, 250, 250)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tiny_encoder, tiny_colpali):
    settings = EmbedderSettings(
        model=str(tiny_colpali),
        max_batch_size=4,
        max_wait_ms=5,
        max_images_per_request=4,
        max_image_pixels=1_000_000,
        max_image_bytes=200_000,
    )
    with TestClient(create_app(settings, encoder=tiny_encoder)) as test_client:
        yield test_client


def test_health_and_info(client):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["dim"] == 128 and info["grid"] == [4, 4] and info["device"] == "cpu"
    assert info["max_batch_size"] == 4


def test_images_binary_and_json_agree(client):
    files = [("images", ("a.jpg", _jpeg(), "image/jpeg")), ("images", ("b.jpg", _jpeg(color=(0, 0, 0)), "image/jpeg"))]
    binary = client.post("/embed/images", files=files, headers={"Accept": wire.CONTENT_TYPE})
    assert binary.status_code == 200 and binary.headers["content-type"] == wire.CONTENT_TYPE
    as_json = client.post("/embed/images", files=files, headers={"Accept": "application/json"})
    decoded, parsed = wire.decode(binary.content), wire.from_json(as_json.json())
    assert [d.patch for d in decoded] == [PatchSpan(start=0, length=16, rows=4, cols=4)] * 2
    np.testing.assert_allclose(decoded[0].vectors, parsed[0].vectors, atol=2e-3)  # float16 rounding only
    assert len(binary.content) * 4 < len(as_json.content)


def test_queries(client):
    response = client.post(
        "/embed/queries", json={"texts": ["invoice total", "q"]}, headers={"Accept": wire.CONTENT_TYPE}
    )
    items = wire.decode(response.content)
    assert len(items) == 2 and items[0].vectors.shape[1] == 128 and items[0].patch is None


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        ({"texts": []}, 422, None),
        ({"texts": ["  "]}, 422, "blank"),
        ({"texts": ["x" * 1001]}, 413, "exceed 1000 characters"),
        ({"texts": ["x"] * 65}, 413, "65 queries"),
    ],
)
def test_query_limits(client, payload, status, detail):
    response = client.post("/embed/queries", json=payload)
    assert response.status_code == status
    if detail:
        assert detail in response.json()["detail"]


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "GIF")
    return buf.getvalue()


def _huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (2000, 2000)).save(buf, "PNG")  # tiny file, 4 MP: a decompression bomb in miniature
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "status", "detail"),
    [
        (b"not an image", 415, "not a supported image"),
        (_gif(), 415, "not a supported image"),
        (_huge_png(), 413, "2000x2000 pixels exceeds"),
        (b"\xff" * 200_001, 413, "exceeds the limit of 200000"),
        (_jpeg()[:200], 400, "corrupt image"),
        (b"", 400, "empty"),
    ],
)
def test_hostile_images_are_refused(client, data, status, detail):
    response = client.post("/embed/images", files=[("images", ("x", data, "image/jpeg"))])
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_too_many_images(client):
    files = [("images", (f"{i}.jpg", _jpeg(), "image/jpeg")) for i in range(5)]
    response = client.post("/embed/images", files=files)
    assert response.status_code == 413 and "limit is 4" in response.json()["detail"]


def test_health_is_503_when_the_model_cannot_load(tmp_path):
    settings = EmbedderSettings(model=str(tmp_path / "missing"))
    with TestClient(create_app(settings)) as test_client:
        assert test_client.get("/health").status_code == 503
        assert test_client.get("/health").json() == {"status": "failed"}
        assert test_client.post("/embed/queries", json={"texts": ["q"]}).status_code == 503


def test_settings_refuse_unsafe_values():
    with pytest.raises(ValueError, match="EMBEDDER_ALLOW_DOWNLOAD=true is refused outside dev"):
        EmbedderSettings(environment="prod", allow_download=True)
    with pytest.raises(ValueError, match="EMBEDDER_IMAGE_FORMATS"):
        EmbedderSettings(image_formats="JPEG,SVG")  # type: ignore[arg-type]
    relaxed = EmbedderSettings(image_formats="jpeg, png")  # type: ignore[arg-type]
    assert relaxed.image_formats == ["JPEG", "PNG"]
    assert EmbedderSettings(model="vidore/colpali-v1.3-hf").local_files_only is True
