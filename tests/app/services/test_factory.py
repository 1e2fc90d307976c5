"""app/services/factory.py: every process's clients follow its settings (nothing connects here)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from minio.credentials import IamAwsProvider

from app.api.settings import Settings
from app.services.factory import page_storage, qdrant_client, redis_settings, vector_index
from app.worker.settings import WorkerSettings


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SETTINGS_SECRETS_DIR", raising=False)


def test_page_storage_defaults_to_the_pages_bucket_with_the_configured_keys_and_sse() -> None:
    settings = WorkerSettings(
        s3_endpoint="https://s3.example:9000",
        s3_bucket_pages="pages-prod",
        s3_access_key="AKIA4REALKEY",
        s3_secret_key="d8f1c0e9b7a6",
        s3_region="eu-west-1",
        s3_secure=True,
        s3_sse="kms",
        s3_kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/abc",
    )
    storage = page_storage(settings)
    assert (storage.bucket, storage.region, storage.presign_ttl_s) == ("pages-prod", "eu-west-1", 300)
    url = urlsplit(storage.presign_get("pages/doc/00001.jpg"))
    assert url.netloc == "s3.example:9000" and url.scheme == "https"
    assert parse_qs(url.query)["X-Amz-Credential"][0].startswith("AKIA4REALKEY/")
    assert type(storage._sse).__name__ == "SseKMS"


def test_the_api_presigns_for_browsers_on_its_public_host_and_ttl() -> None:
    settings = Settings(
        auth_enabled=False,
        s3_access_key="AKIA4REALKEY",
        s3_secret_key="d8f1c0e9b7a6",
        s3_public_endpoint="https://files.example.com",
        presign_ttl_s=120,
    )
    storage = page_storage(
        settings,
        bucket=settings.s3_bucket_audit,
        presign_ttl_s=settings.presign_ttl_s,
        presign_endpoint=settings.s3_public_endpoint,
    )
    assert storage.bucket == "visionrag-audit" and storage.presign_ttl_s == 120
    url = urlsplit(storage.presign_get("audit/x.json"))
    assert url.netloc == "files.example.com" and parse_qs(url.query)["X-Amz-Expires"] == ["120"]


def test_page_storage_signs_with_the_role_in_iam_mode() -> None:
    storage = page_storage(WorkerSettings(s3_auth="iam"))
    assert isinstance(storage._client._provider, IamAwsProvider)


async def test_vector_index_carries_the_collection_and_its_layout() -> None:
    settings = WorkerSettings(
        qdrant_collection="docs",
        qdrant_on_disk=False,
        qdrant_quantization="binary",
        qdrant_replication_factor=3,
        qdrant_shard_number=2,
    )
    index = vector_index(settings)
    try:
        assert (index.alias, index.on_disk, index.quantization) == ("docs", False, "binary")
        assert (index.replication_factor, index.shard_number) == (3, 2)
    finally:
        await index.client.close()


# qdrant-client asks the server for its version once; a closed local port answers at once (no network).
@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
async def test_qdrant_client_uses_the_api_key_and_timeout_for_a_server() -> None:
    settings = WorkerSettings(qdrant_url="https://127.0.0.1:1", qdrant_api_key="q-key", qdrant_timeout_s=7)
    client = qdrant_client(settings, prefer_grpc=True)
    try:
        remote = client._client
        assert remote._prefer_grpc is True and remote._timeout == 7 and remote._api_key == "q-key"
    finally:
        await client.close()


def test_redis_settings_follow_redis_url() -> None:
    arq = redis_settings(WorkerSettings(redis_url="rediss://:tok@cache.example:6380/2"))
    assert (arq.host, arq.port, arq.database, arq.password, arq.ssl) == ("cache.example", 6380, 2, "tok", True)
