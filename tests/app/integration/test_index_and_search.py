"""Done-when of issue 7, end to end on real parts.

API (real app, lifespan, JWT) -> upload to SeaweedFS -> arq job in redis-server -> worker renders with
pypdfium2, uploads JPEGs, embeds with the tiny ColPali served by `python -m app.embedder` in its own process
-> Qdrant. The embedder is SIGKILLed mid-job and restarted: the job retries and the index ends complete and
duplicate-free. Search returns the pages with presigned URLs that fetch from SeaweedFS and expire.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.worker import Worker

from app.api.main import create_app
from app.api.settings import load_settings
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, worker_options
from tests.app.indexing_support import free_port, make_pdf, tiny_colpali

PAGES = 6
__all__ = ["tiny_colpali"]  # the shared session fixture
ROOT = Path(__file__).resolve().parents[3]


class EmbedderProcess:
    """`python -m app.embedder` on the tiny model; can be killed and started again on the same port."""

    def __init__(self, model: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.model = model
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        env = {
            **os.environ,
            "EMBEDDER_MODEL": str(self.model),
            "EMBEDDER_HOST": "127.0.0.1",
            "EMBEDDER_PORT": str(self.port),
            "EMBEDDER_MAX_WAIT_MS": "250",
            "EMBEDDER_MAX_BATCH_SIZE": "8",
            "EMBEDDER_LOG_LEVEL": "warning",
            "HF_HUB_OFFLINE": "1",
        }
        self.starts += 1
        log = open(self.log_dir / f"embedder-{self.starts}.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.embedder"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedder exited: {(self.log_dir / f'embedder-{self.starts}.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("embedder did not become healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def embedder(tiny_colpali: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedderProcess]:
    process = EmbedderProcess(tiny_colpali, tmp_path_factory.mktemp("embedder-logs"))
    process.start()
    yield process
    process.stop()


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


async def test_upload_index_kill_embedder_retry_search(embedder, clean_redis, seaweed_s3, s3_buckets, issuer):
    settings = load_settings(
        environment="dev",
        redis_url=clean_redis,
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=seaweed_s3.access_key,
        s3_secret_key=seaweed_s3.secret_key,
        s3_region=seaweed_s3.region,
        s3_secure=False,
        s3_sse="s3",
        s3_bucket_pages=s3_buckets.pages,
        s3_bucket_audit=s3_buckets.audit,
        qdrant_url=":memory:",
        embedder_url=embedder.url,
        auth_issuer_url=issuer.issuer,
        auth_audience=issuer.audience,
        auth_jwks_url=issuer.jwks_url,
        metrics_enabled=False,
        presign_ttl_s=60,
        max_pdf_pages=20,
        rate_limit_upload="100/minute",
        cache_enabled=False,
    )
    worker_settings = WorkerSettings(
        redis_url=clean_redis,
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=seaweed_s3.access_key,
        s3_secret_key=seaweed_s3.secret_key,
        s3_bucket_pages=s3_buckets.pages,
        s3_sse="s3",
        embedder_url=embedder.url,
        embedder_timeout_s=10,
        worker_embed_batch=1,
        worker_render_dpi=72,
        worker_max_tries=8,
        worker_retry_base_s=1.0,
        worker_retry_max_s=4.0,
        worker_call_attempts=2,
        worker_metrics_port=0,
    )
    token = issuer.mint("alice")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Any = app.state.services
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            files = {"files": ("quarterly report.pdf", make_pdf(PAGES), "application/pdf")}
            accepted = await client.post("/index", files=files, headers=headers)
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]

            # The worker shares the API's Qdrant (local mode lives in this process).
            indexer = build_indexer(worker_settings, vectors=services.vectors, jobs=None)
            worker = Worker(
                **worker_options(
                    worker_settings,
                    burst=True,
                    handle_signals=False,
                    poll_delay=0.05,
                    ctx={"settings": worker_settings, "indexer": indexer},
                )
            )

            async def kill_mid_job() -> int:
                while True:
                    status = await services.jobs.get(job_id)
                    if status is not None and status.pages_done >= 2:
                        embedder.kill()
                        embedder.start(wait=False)
                        return status.pages_done
                    await asyncio.sleep(0.02)

            killer = asyncio.create_task(kill_mid_job())
            await asyncio.wait_for(worker.main(), timeout=180)
            await worker.close()
            killed_at = await asyncio.wait_for(killer, 1)
            assert 2 <= killed_at < PAGES

            job = (await client.get(f"/jobs/{job_id}", headers=headers)).json()
            assert job["state"] == "succeeded", job
            assert job["pages_done"] == job["pages_total"] == PAGES
            status = await services.jobs.get(job_id)
            assert status is not None and status.attempt >= 2  # it really retried after the kill
            assert embedder.starts == 2

            document_id = status.document_id
            assert await services.vectors.count() == PAGES  # duplicate-free
            pages = await services.vectors.document_pages(document_id)
            assert [p["page"] for p in pages] == list(range(1, PAGES + 1))
            keys = seaweed_s3.object_names(s3_buckets.pages, f"pages/{document_id}/")
            assert keys == [f"pages/{document_id}/{n:05d}.jpg" for n in range(1, PAGES + 1)]

            found = await client.get("/search", params={"q": "quarterly revenue", "k": 10}, headers=headers)
            assert found.status_code == 200, found.text
            hits = found.json()
            assert len(hits) == PAGES
            assert {h["payload"]["page"] for h in hits} == set(range(1, PAGES + 1))
            first = hits[0]
            assert "X-Amz-Signature=" in first["image_url"] and "X-Amz-Expires=60" in first["image_url"]
            status_code, body = _fetch(first["image_url"])
            key = first["payload"]["object_key"]
            assert status_code == 200 and body == seaweed_s3.read(s3_buckets.pages, key) and body[:2] == b"\xff\xd8"
            assert _fetch(f"{seaweed_s3.url}/{s3_buckets.pages}/{key}")[0] == 403  # never public
            short = services.storage.presign_get(key, ttl_s=1)
            assert _fetch(short)[0] == 200
            await asyncio.sleep(2.5)
            assert _fetch(short)[0] == 403  # expired
