"""Private page storage on S3 or any S3-compatible server (SeaweedFS, MinIO) through the `minio` client.

The bucket is never public: clients get short-lived presigned GET URLs. Every write asks for server-side
encryption (SSE-S3, or SSE-KMS with a customer key on AWS). minio's client is synchronous, so the async
methods run it on worker threads; presigning is pure computation (the region is fixed up front, so minio never
has to look the bucket's location up) and stays synchronous.
"""

from __future__ import annotations

import asyncio
import io
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import certifi
import urllib3
from minio import Minio
from minio.credentials import Provider
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.sse import Sse, SseKMS, SseS3

SseMode = Literal["none", "s3", "kms"]
SSE_MODES: tuple[str, ...] = ("none", "s3", "kms")
MAX_PRESIGN_TTL_S = 3600
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"})


class ObjectNotFound(KeyError):
    """The key does not exist in the bucket."""


@dataclass(frozen=True)
class PutItem:
    key: str
    data: bytes
    content_type: str = "application/octet-stream"


def validate_key(key: str) -> str:
    """Refuse keys that could escape their prefix or confuse path-style addressing."""
    if not key or len(key) > 1024:
        raise ValueError(f"object key {key!r}: must be 1..1024 characters")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"object key {key!r}: must be relative, without backslashes or NUL")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in (parts[:-1] if key.endswith("/") else parts)):
        raise ValueError(f"object key {key!r}: empty, '.' or '..' path segments are not allowed")
    if posixpath.normpath(key) != key.rstrip("/"):
        raise ValueError(f"object key {key!r}: must already be normalised")
    return key


def _http_client(timeout_s: float, max_connections: int) -> urllib3.PoolManager:
    # minio retries on its own for some errors; the urllib3 layer adds bounded connect/read timeouts so a
    # stalled S3 endpoint fails fast instead of hanging a request or a worker slot.
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
        maxsize=max_connections,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
    )


class PageStorage:
    """Objects in one private bucket. Keys are `uploads/<doc>/<file>` and `pages/<doc>/<page:05d>.jpg`."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        secure: bool = True,
        sse: SseMode = "s3",
        kms_key_id: str | None = None,
        presign_ttl_s: int = 300,
        presign_endpoint: str | None = None,
        timeout_s: float = 10.0,
        max_connections: int = 16,
        upload_concurrency: int = 8,
        credentials: Provider | None = None,
    ) -> None:
        if sse not in SSE_MODES:
            raise ValueError(f"sse={sse!r}: allowed values are {', '.join(SSE_MODES)}")
        if sse == "kms" and not kms_key_id:
            raise ValueError("kms_key_id is required when sse='kms'")
        if sse == "kms" and not secure:
            raise ValueError("sse='kms' needs secure=True: S3 refuses SSE-KMS requests over plain HTTP")
        if not 1 <= presign_ttl_s <= MAX_PRESIGN_TTL_S:
            raise ValueError(f"presign_ttl_s={presign_ttl_s}: allowed 1..{MAX_PRESIGN_TTL_S} seconds")
        if not bucket:
            raise ValueError("bucket must not be empty")
        if upload_concurrency < 1:
            raise ValueError(f"upload_concurrency={upload_concurrency}: must be >= 1")
        endpoint = endpoint.removeprefix("https://").removeprefix("http://").rstrip("/")
        self.bucket = bucket
        self.region = region
        self.presign_ttl_s = presign_ttl_s
        self._sse: Sse | None = {
            "none": None,
            "s3": SseS3(),
            "kms": SseKMS(kms_key_id or "", {}),
        }[sse]
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(timeout_s, max_connections),
            # "iam" mode: short-lived keys from a provider (IRSA), refreshed before they expire.
            credentials=credentials,
        )
        # Browsers may reach the store under another host name than the pods do (ingress vs. service DNS);
        # presigning is offline, so a second client only changes the host baked into the signature.
        if presign_endpoint:
            public = presign_endpoint.removeprefix("https://").removeprefix("http://").rstrip("/")
            self._presigner = Minio(
                public,
                access_key=access_key,
                secret_key=secret_key,
                secure=presign_endpoint.startswith("https://") or (secure and "://" not in presign_endpoint),
                region=region,
                credentials=credentials,
            )
        else:
            self._presigner = self._client
        self._upload_slots = asyncio.Semaphore(upload_concurrency)

    # --- bucket -----------------------------------------------------------------------------------------------
    async def ensure_bucket(self) -> None:
        """Create the bucket if missing (local runs and tests; in AWS the stack owns the bucket)."""

        def _ensure() -> None:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket, location=self.region)

        await asyncio.to_thread(_ensure)

    async def ping(self) -> bool:
        """True when the bucket is reachable with these credentials."""
        return await asyncio.to_thread(self._client.bucket_exists, self.bucket)

    # --- objects ----------------------------------------------------------------------------------------------
    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        validate_key(key)

        def _put() -> str:
            result = self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, sse=self._sse
            )
            return str(result.etag)

        async with self._upload_slots:
            return await asyncio.to_thread(_put)

    async def put_many(self, items: Sequence[PutItem]) -> list[str]:
        """Upload concurrently (bounded by `upload_concurrency`); returns etags in input order."""
        return list(await asyncio.gather(*(self.put_bytes(i.key, i.data, i.content_type) for i in items)))

    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)

        def _get() -> bytes:
            try:
                response = self._client.get_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    raise ObjectNotFound(key) from None
                raise
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(_get)

    async def exists(self, key: str) -> bool:
        validate_key(key)

        def _stat() -> bool:
            try:
                self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    return False
                raise
            return True

        return await asyncio.to_thread(_stat)

    async def list_keys(self, prefix: str) -> list[str]:
        def _list() -> list[str]:
            return [
                str(obj.object_name)
                for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if obj.object_name
            ]

        return await asyncio.to_thread(_list)

    async def delete(self, key: str) -> None:
        validate_key(key)
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (must end with '/'); returns how many were deleted."""
        if not prefix.endswith("/") or prefix == "/":
            raise ValueError(f"prefix {prefix!r}: must be a folder ending with '/', never the whole bucket")
        validate_key(prefix.rstrip("/"))
        keys = await self.list_keys(prefix)
        if not keys:
            return 0

        def _remove(batch: Iterable[str]) -> list[str]:
            errors = self._client.remove_objects(self.bucket, (DeleteObject(k) for k in batch))
            return [f"{e.name}: {e.code}" for e in errors]

        failures: list[str] = []
        for start in range(0, len(keys), 1000):
            failures += await asyncio.to_thread(_remove, keys[start : start + 1000])
        if failures:
            raise RuntimeError(f"failed to delete {len(failures)} objects under {prefix!r}: {failures[:5]}")
        return len(keys)

    # --- URLs -------------------------------------------------------------------------------------------------
    def presign_get(self, key: str, ttl_s: int | None = None) -> str:
        """A GET URL for one object that expires after `ttl_s` (default `presign_ttl_s`)."""
        validate_key(key)
        ttl = self.presign_ttl_s if ttl_s is None else ttl_s
        if not 1 <= ttl <= MAX_PRESIGN_TTL_S:
            raise ValueError(f"ttl_s={ttl}: allowed 1..{MAX_PRESIGN_TTL_S} seconds")
        return self._presigner.presigned_get_object(self.bucket, key, expires=timedelta(seconds=ttl))


def page_object_key(document_id: str, page: int) -> str:
    """Deterministic key of a rendered page, so a retried job overwrites instead of duplicating."""
    if page < 1:
        raise ValueError(f"page={page}: pages are numbered from 1")
    return validate_key(f"pages/{document_id}/{page:05d}.jpg")


def document_prefixes(document_id: str) -> tuple[str, str]:
    """The upload and page prefixes that hold everything stored for one document."""
    return validate_key(f"uploads/{document_id}/"), validate_key(f"pages/{document_id}/")
