"""The one place service clients meet settings: each client built from the shared connection fields.

Service classes (`app/services/*`) take explicit parameters and know nothing of settings; the API's container,
the worker and the ops commands build them here, so an S3, Qdrant or Redis option is wired once. Nothing here
connects: the clients connect on first use.
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from qdrant_client import AsyncQdrantClient

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


def redis_settings(settings: ConnectionSettings) -> RedisSettings:
    """arq's connection settings for REDIS_URL (the worker's queue and its health check)."""
    return RedisSettings.from_dsn(settings.redis_url)
