"""Helpers shared by the indexing tests (embedder, worker, ops, integration): importable because pytest puts
tests/app on sys.path for tests/app/conftest.py."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
