"""The process-wide clients the routes use, built once from Settings in the app's lifespan.

Service classes (`app/services/*`) take explicit parameters; the shared clients (S3, Qdrant) come from
`app/services/factory.py`, the API-only ones (auth, rate limits, chat, cache) are wired here. Nothing
here connects eagerly: a dependency that is down at start makes `/health` report it (503) instead of crashing
the pod into a restart loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from app.api.auth import JwksCache, TokenVerifier
from app.api.cache import ResponseCache
from app.api.llm import ChatModel, TokenBudget
from app.api.malware import ClamdScanner
from app.api.quotas import QuotaLimits, Quotas
from app.api.ratelimit import Limits, RateLimiter, parse_networks
from app.api.settings import Settings
from app.api.upload_slots import UploadSlots
from app.core.audit import AuditLog
from app.core.logging import get_logger
from app.core.metrics import BREAKER_TRANSITIONS
from app.core.resilience import Resilience, make_async_client
from app.services.embedder_client import EmbedderClient
from app.services.factory import page_storage, qdrant_client, redis_client
from app.services.jobs import JobStore
from app.services.storage import PageStorage
from app.services.vectors import VectorIndex

log = get_logger(__name__)


@dataclass
class HealthCache:
    result: dict[str, Any] | None = None
    at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class AppServices:
    settings: Settings
    resilience: Resilience
    http: httpx.AsyncClient
    redis: ArqRedis
    storage: PageStorage
    audit_storage: PageStorage
    audit: AuditLog
    qdrant: AsyncQdrantClient
    vectors: VectorIndex
    embedder: EmbedderClient
    embedder_http: httpx.AsyncClient
    jobs: JobStore
    verifier: TokenVerifier
    limiter: RateLimiter
    cache: ResponseCache
    chat: ChatModel | None
    quotas: Quotas
    scanner: ClamdScanner | None
    trusted_proxies: tuple[Any, ...]
    upload_slots: UploadSlots
    health: HealthCache = field(default_factory=HealthCache)
    _version: tuple[float, str] = (0.0, "")

    @classmethod
    def build(cls, settings: Settings) -> AppServices:
        resilience = Resilience(
            failure_threshold=settings.breaker_failure_threshold,
            reset_timeout_s=settings.breaker_reset_timeout_s,
            retry_attempts=settings.retry_attempts,
            backoff_initial_s=settings.retry_backoff_initial_s,
            backoff_max_s=settings.retry_backoff_max_s,
            on_state_change=lambda dep, state: BREAKER_TRANSITIONS.labels(dependency=dep, state=state).inc(),
        )
        http = make_async_client(
            connect_timeout_s=settings.http_connect_timeout_s,
            read_timeout_s=settings.http_read_timeout_s,
            max_connections=settings.http_max_connections,
        )
        redis = redis_client(settings.redis_url, timeout_s=settings.redis_timeout_s)

        def storage_for(bucket: str) -> PageStorage:
            return page_storage(
                settings,
                bucket=bucket,
                presign_ttl_s=settings.presign_ttl_s,
                presign_endpoint=settings.s3_public_endpoint,
            )

        audit_storage = storage_for(settings.s3_bucket_audit)
        qdrant = qdrant_client(settings)
        embedder_http = make_async_client(
            base_url=settings.embedder_url.rstrip("/"),
            connect_timeout_s=settings.http_connect_timeout_s,
            read_timeout_s=settings.embedder_timeout_s,
            max_connections=settings.http_max_connections,
        )
        jwks = JwksCache(
            settings.auth_jwks_url,
            http,
            ttl_s=settings.auth_jwks_cache_ttl_s,
            timeout_s=settings.auth_jwks_timeout_s,
            min_refresh_interval_s=settings.auth_jwks_min_refresh_interval_s,
        )
        limiter = RateLimiter(
            settings.limiter_storage_url,
            Limits.from_strings(
                per_minute=settings.rate_limit_per_minute,
                search=settings.rate_limit_search,
                chat=settings.rate_limit_chat,
                upload=settings.rate_limit_upload,
            ),
            timeout_s=settings.redis_timeout_s,
            fail_open=settings.rate_limit_fail_open,
        )
        chat: ChatModel | None = None
        if settings.openai_api_key is not None:
            openai_client = AsyncOpenAI(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout_s,
                max_retries=settings.openai_max_retries,
                # openai accepts an httpx client too; ours forwards the request id and bounds the pool.
                http_client=make_async_client(  # type: ignore[arg-type]
                    connect_timeout_s=settings.http_connect_timeout_s,
                    read_timeout_s=settings.openai_timeout_s,
                    max_connections=settings.chat_max_concurrency * 2,
                ),
            )
            chat = ChatModel(
                openai_client,
                TokenBudget(redis, daily_tokens=settings.chat_daily_token_budget),
                resilience,
                model=settings.openai_model,
                timeout_s=settings.openai_timeout_s,
                max_output_tokens=settings.chat_max_output_tokens,
                max_concurrency=settings.chat_max_concurrency,
                queue_timeout_s=settings.chat_queue_timeout_s,
                moderation_enabled=settings.chat_moderation_enabled,
                moderation_model=settings.chat_moderation_model,
            )
        return cls(
            settings=settings,
            resilience=resilience,
            http=http,
            redis=redis,
            storage=storage_for(settings.s3_bucket_pages),
            audit_storage=audit_storage,
            audit=AuditLog(audit_storage),
            qdrant=qdrant,
            vectors=VectorIndex(qdrant, collection=settings.qdrant_collection),
            embedder=EmbedderClient(settings.embedder_url, client=embedder_http),
            embedder_http=embedder_http,
            jobs=JobStore(redis),
            verifier=TokenVerifier(settings, jwks),
            limiter=limiter,
            cache=ResponseCache(redis, ttl_s=settings.cache_ttl_s, enabled=settings.cache_enabled),
            chat=chat,
            quotas=Quotas(
                redis,
                QuotaLimits(
                    search_per_day=settings.quota_search_per_day,
                    chat_per_day=settings.quota_chat_per_day,
                    upload_pages_per_day=settings.quota_upload_pages_per_day,
                    upload_bytes_per_day=settings.quota_upload_bytes_per_day,
                ),
                metric_max_tenants=settings.quota_metric_max_tenants,
            ),
            scanner=(
                ClamdScanner(settings.clamd_host, settings.clamd_port, timeout_s=settings.clamd_timeout_s)
                if settings.clamd_host
                else None
            ),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            upload_slots=UploadSlots(settings.upload_max_concurrent, wait_s=settings.upload_queue_timeout_s),
        )

    async def start(self) -> None:
        # Local mode (tests, `make local`) has no server to own the schema; create it so searches work.
        if self.settings.qdrant_url == ":memory:" or "://" not in self.settings.qdrant_url:
            await self.vectors.ensure_collection()

    async def aclose(self) -> None:
        closers = [self.http.aclose(), self.embedder_http.aclose(), self.redis.aclose(), self.qdrant.close()]
        if self.chat is not None:
            closers.append(self.chat.client.close())
        for result in await asyncio.gather(*closers, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("close_failed", error=type(result).__name__)

    async def collection_version(self) -> str:
        """Changes whenever the index does (alias target, schema version, point count); cached 2 s."""
        at, cached = self._version
        if cached and time.monotonic() - at < 2.0:
            return cached

        async def read() -> str:
            target = await self.vectors.resolve()
            if target is None:
                return "empty"
            count = await self.qdrant.count(target, exact=True)
            return f"{target}:{await self.vectors.stored_version(target)}:{count.count}"

        version = await self.resilience.call("qdrant", read, timeout_s=self.settings.qdrant_timeout_s)
        self._version = (time.monotonic(), version)
        return version
