"""The one place service clients meet settings: each client built from the shared connection fields.

Service classes (`app/services/*`) take explicit parameters and know nothing of settings; the API's container,
the worker and the ops commands build them here, so an S3, Qdrant or Redis option is wired once. Nothing here
connects: the clients connect on first use.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis, RedisSettings
from qdrant_client import AsyncQdrantClient
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.settings import CollectionSettings, ConnectionSettings
from app.services.storage import PageStorage
from app.services.vectors import VectorIndex, make_qdrant_client


def qdrant_client(settings: ConnectionSettings, *, prefer_grpc: bool = False) -> AsyncQdrantClient:
    return make_qdrant_client(
        settings.qdrant_url,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        timeout_s=settings.qdrant_timeout_s,
        prefer_grpc=prefer_grpc,
    )


def vector_index(settings: CollectionSettings, client: AsyncQdrantClient | None = None) -> VectorIndex:
    """The collection with its configured layout (what the worker and ops create, fill and migrate)."""
    return VectorIndex(
        client or qdrant_client(settings, prefer_grpc=settings.qdrant_prefer_grpc),
        collection=settings.qdrant_collection,
        on_disk=settings.qdrant_on_disk,
        quantization=settings.qdrant_quantization,
        replication_factor=settings.qdrant_replication_factor,
        shard_number=settings.qdrant_shard_number,
    )


def page_storage(
    settings: ConnectionSettings,
    *,
    bucket: str | None = None,
    presign_ttl_s: int | None = None,
    presign_endpoint: str | None = None,
) -> PageStorage:
    """One private bucket (default: the pages bucket) with the configured auth mode, encryption and timeout.

    Only the API presigns URLs for browsers; it passes its TTL and public endpoint.
    """
    options: dict[str, Any] = settings.s3_credentials()
    if presign_ttl_s is not None:  # otherwise PageStorage's own default
        options["presign_ttl_s"] = presign_ttl_s
    return PageStorage(
        endpoint=settings.s3_endpoint,
        bucket=bucket or settings.s3_bucket_pages,
        region=settings.s3_region,
        secure=settings.s3_secure,
        sse=settings.s3_sse,
        kms_key_id=settings.s3_kms_key_id,
        presign_endpoint=presign_endpoint,
        timeout_s=settings.s3_timeout_s,
        **options,
    )


# What a Redis restart or failover looks like to a client; redis-py retries a command (pipelines included) only
# for errors in both the Retry's supported errors and the connection's `retry_on_error`, so both name these.
REDIS_RETRY_ERRORS: tuple[type[RedisError], ...] = (RedisConnectionError, RedisTimeoutError)
# Backoff between reconnect attempts: 0.2, 0.4, 0.8, 1.6, then 2 s each (redis-py ExponentialBackoff).
REDIS_BACKOFF_BASE_S = 0.1
REDIS_BACKOFF_CAP_S = 2.0
# The API answers users: a couple of quick retries (~0.6 s), then /health and the routes report Redis down.
API_REDIS_RETRIES = 2
REDIS_HEALTH_CHECK_INTERVAL_S = 30


def redis_retry(retries: int) -> Retry:
    """redis-py's Retry with exponential backoff on connection errors and timeouts."""
    return Retry(ExponentialBackoff(cap=REDIS_BACKOFF_CAP_S, base=REDIS_BACKOFF_BASE_S), retries, REDIS_RETRY_ERRORS)


def redis_retry_budget_s(retries: int) -> float:
    """Seconds of backoff one command spends before it gives up (what a Redis restart must fit into)."""
    return sum(min(REDIS_BACKOFF_CAP_S, REDIS_BACKOFF_BASE_S * 2**n) for n in range(1, retries + 1))


def redis_client(
    url: str, *, timeout_s: float, retries: int = API_REDIS_RETRIES, queue_name: str | None = None
) -> ArqRedis:
    """The one Redis client config (the API's clients and the worker's arq pool): timeouts, retry with backoff on
    connection errors, and a PING before reusing a connection idle for `REDIS_HEALTH_CHECK_INTERVAL_S`."""
    client = ArqRedis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=redis_retry(retries),
        retry_on_error=list(REDIS_RETRY_ERRORS),
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL_S,
    )
    if queue_name is not None:
        client.default_queue_name = queue_name
    return client


def redis_settings(settings: ConnectionSettings, *, retries: int = API_REDIS_RETRIES) -> RedisSettings:
    """arq's connection settings for REDIS_URL (arq's own `create_pool`, e.g. the worker's health check)."""
    base = RedisSettings.from_dsn(settings.redis_url)
    base.retry = redis_retry(retries)
    base.retry_on_error = list(REDIS_RETRY_ERRORS)
    return base
