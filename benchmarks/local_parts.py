"""Start the real local parts a benchmark needs (SeaweedFS S3, the embedder process) on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.dev_servers import DevServerError, SeaweedS3, free_ports, start_seaweedfs

__all__ = ["embedder_process", "free_ports", "seaweed", "tiny_model"]

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def seaweed(workdir: Path) -> Iterator[SeaweedS3]:
    try:
        s3 = start_seaweedfs(
            workdir, access_key="bench" + uuid.uuid4().hex[:8], secret_key=uuid.uuid4().hex, identity="bench"
        )
    except DevServerError as exc:
        raise SystemExit(str(exc)) from None
    with s3:
        yield s3


@contextmanager
def embedder_process(model: Path, *, max_wait_ms: int = 2, max_batch: int = 8) -> Iterator[str]:
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "EMBEDDER_MODEL": str(model),
        "EMBEDDER_HOST": "127.0.0.1",
        "EMBEDDER_PORT": str(port),
        "EMBEDDER_MAX_WAIT_MS": str(max_wait_ms),
        "EMBEDDER_MAX_BATCH_SIZE": str(max_batch),
        "EMBEDDER_LOG_LEVEL": "warning",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen([sys.executable, "-m", "app.embedder"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("embedder did not start")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def tiny_model() -> Path:
    from app.embedder.tiny_model import ensure_tiny_colpali

    return ensure_tiny_colpali(Path(tempfile.gettempdir()) / "visionrag-tiny-colpali")
