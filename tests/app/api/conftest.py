"""API fixtures: Settings pointed at the real local parts, the app under its lifespan, an embedder stub."""

from __future__ import annotations

import hashlib
import inspect
import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pypdfium2 as pdfium
import pytest
import pytest_asyncio
from fastapi import FastAPI

from app.api.container import AppServices
from app.api.main import create_app
from app.api.settings import Settings, load_settings
from app.services.vectors import PageVectors

DIM = 128


def embed_text(text: str, tokens: int = 4) -> np.ndarray:
    """Deterministic unit vectors per text: the stub embedder and the seeded pages agree on them."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    array = np.random.default_rng(seed).standard_normal((tokens, DIM)).astype(np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


@dataclass
class EmbedderStub:
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    healthy: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _embedder_handler(base: type) -> type:
    class _EmbedderHandler(base):  # type: ignore[valid-type,misc]
        def do_GET(self) -> None:
            stub: EmbedderStub = self.server.owner  # type: ignore[attr-defined]
            if self.path == "/health":
                self._json(200 if stub.healthy else 503, {"status": "ok" if stub.healthy else "loading"})
            else:
                self._json(404, {"detail": "not found"})

        def do_POST(self) -> None:
            stub: EmbedderStub = self.server.owner  # type: ignore[attr-defined]
            body = self._body() or {}
            stub.requests.append({"path": self.path, "body": body, "request_id": self.headers.get("X-Request-ID")})
            if self.path != "/embed/queries":
                self._json(404, {"detail": "not found"})
                return
            texts = body.get("texts", [])
            self._json(200, {"embeddings": [embed_text(t).tolist() for t in texts], "patch_spans": [None] * len(texts)})

    return _EmbedderHandler


@pytest.fixture(scope="session")
def embedder_stub_server(stub_http: Any) -> Iterator[EmbedderStub]:
    stub = EmbedderStub()
    server = stub_http.start(_embedder_handler(stub_http.handler_base), stub)
    stub.port = server.port
    yield stub
    server.close()


@pytest.fixture
def embedder_stub(embedder_stub_server: EmbedderStub) -> Iterator[EmbedderStub]:
    embedder_stub_server.requests.clear()
    embedder_stub_server.healthy = True
    yield embedder_stub_server
    embedder_stub_server.healthy = True


@pytest.fixture
def settings_factory(
    clean_redis: str, seaweed_s3: Any, s3_buckets: Any, issuer: Any, openai_stub: Any, embedder_stub: EmbedderStub
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "dev",
            "redis_url": clean_redis,
            "s3_endpoint": seaweed_s3.endpoint,
            "s3_access_key": seaweed_s3.access_key,
            "s3_secret_key": seaweed_s3.secret_key,
            "s3_region": seaweed_s3.region,
            "s3_secure": False,
            "s3_bucket_pages": s3_buckets.pages,
            "s3_bucket_audit": s3_buckets.audit,
            "qdrant_url": ":memory:",
            "embedder_url": embedder_stub.url,
            "auth_issuer_url": issuer.issuer,
            "auth_audience": issuer.audience,
            "auth_jwks_url": issuer.jwks_url,
            "openai_api_key": openai_stub.api_key,
            "openai_base_url": openai_stub.base_url,
            "metrics_enabled": False,
            "health_cache_ttl_s": 0,
            "retry_backoff_initial_s": 0.01,
            "retry_backoff_max_s": 0.05,
            "rate_limit_per_minute": 1000,
            "rate_limit_search": "1000/minute",
            "rate_limit_chat": "1000/minute",
            "rate_limit_upload": "1000/minute",
            "max_upload_mb": 1,
            "max_upload_files": 3,
            "max_pdf_pages": 5,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def services(self) -> AppServices:
        services: AppServices = self.app.state.services
        return services


@asynccontextmanager
async def running_api(settings: Settings, *, peer: str = "203.0.113.7") -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            yield Api(app, client, settings)


@pytest.fixture
def api_factory() -> Callable[..., Any]:
    """`async with api_factory(settings) as api:` for tests that need non-default settings."""
    return running_api


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    async with running_api(settings_factory()) as running:
        yield running


@pytest.fixture
def auth(issuer: Any) -> Callable[..., dict[str, str]]:
    def headers(sub: str = "user-1", roles: list[str] | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issuer.mint(sub, roles, **claims)}"}

    return headers


def make_pdf(pages: int = 1) -> bytes:
    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(200, 200)
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


async def seed_pages(services: AppServices, document_id: str, texts: list[str], *, owner: str = "user-1") -> None:
    """Index pages whose vectors equal the stub embedding of `texts[i]`, with page images in storage."""
    pages = []
    for number, text in enumerate(texts, start=1):
        vectors = embed_text(text)
        key = f"pages/{document_id}/{number:05d}.jpg"
        await services.storage.put_bytes(key, b"\xff\xd8\xff" + text.encode(), "image/jpeg")
        pages.append(
            PageVectors(
                document_id=document_id,
                page=number,
                original=vectors,
                rows=vectors,
                columns=vectors,
                payload={"filename": f"{document_id}.pdf", "object_key": key, "owner": owner},
            )
        )
    await services.vectors.upsert_pages(pages)


@pytest.fixture
def pdf_bytes() -> Callable[[int], bytes]:
    return make_pdf


@pytest.fixture
def seed() -> Callable[..., Any]:
    return seed_pages


@pytest.fixture
def embed() -> Callable[[str], np.ndarray]:
    return embed_text


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Async API tests share the session event loop with the session-scoped async fixtures."""
    here = Path(__file__).parent
    for item in items:
        func = getattr(item, "function", None)
        if func is not None and inspect.iscoroutinefunction(func) and here in Path(str(item.fspath)).parents:
            marker = item.get_closest_marker("asyncio")
            if marker is None or "loop_scope" not in marker.kwargs:
                item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
