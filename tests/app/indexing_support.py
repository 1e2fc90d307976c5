"""Helpers shared by the indexing tests (embedder, worker, ops, integration): importable because pytest puts
tests/app on sys.path for tests/app/conftest.py."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw


def make_pdf(pages: int, *, size: tuple[int, int] = (420, 594), seed: int = 0) -> bytes:
    """A real multi-page PDF (one raster image per page) whose pages differ visibly."""
    images = []
    for n in range(pages):
        image = Image.new("RGB", size, (255, 255, 255))
        draw = ImageDraw.Draw(image)
        shade = (37 * (n + seed)) % 200
        draw.rectangle((20, 20 + 15 * n % 400, 300, 140 + 15 * n % 400), fill=(shade, 255 - shade, (n * 91) % 255))
        draw.text((40, 500), f"page {n + 1}", fill=(0, 0, 0))
        images.append(image)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 in a daemon thread (with lifespan); yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# --- fixtures (imported by the conftests of tests/app/{embedder,worker,ops,integration}) ----------------------
@pytest.fixture(scope="session")
def tiny_colpali(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random ColPali checkpoint, built once per session and shared by every folder."""
    from app.embedder.tiny_model import ensure_tiny_colpali

    return ensure_tiny_colpali(tmp_path_factory.getbasetemp() / "tiny-colpali")


@pytest.fixture(scope="session")
def embedder_url(tiny_colpali: Path) -> Iterator[str]:
    """The real embedder app on the tiny model, over real HTTP (uvicorn in a thread)."""
    from app.embedder.app import create_app
    from app.embedder.settings import EmbedderSettings

    settings = EmbedderSettings(model=str(tiny_colpali), max_batch_size=8, max_wait_ms=2)
    with serve_in_thread(create_app(settings)) as url:
        yield url
