"""WorkerSettings as the deployed pod builds it: S3_AUTH (static|iam), Secret files under SETTINGS_SECRETS_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from minio.credentials import IamAwsProvider

from app.ops.settings import OpsSettings
from app.worker.settings import WorkerSettings
from app.worker.tasks import build_indexer
from tests.app.api.test_api_s3_auth import ROLE_ARN, WEB_IDENTITY_TOKEN, FakeSts, fake_sts, irsa_env

__all__ = ["fake_sts", "irsa_env"]

PROD = {
    "environment": "prod",
    "s3_sse": "kms",
    "s3_kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/abc",
    "qdrant_url": "http://qdrant.visionrag.svc.cluster.local:6333",
    "qdrant_api_key": "q-4f1c9e0b7a2d4c55b1e3",
}


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for var in ("SETTINGS_SECRETS_DIR", "S3_AUTH", "S3_ACCESS_KEY", "S3_SECRET_KEY", "REDIS_URL", "QDRANT_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def test_iam_mode_outside_dev_needs_no_keys() -> None:
    settings = WorkerSettings(**PROD, s3_auth="iam")
    assert settings.s3_auth == "iam"
    assert isinstance(settings.s3_credentials()["credentials"], IamAwsProvider)


def test_iam_mode_with_static_keys_is_refused_everywhere() -> None:
    with pytest.raises(ValueError, match="S3_ACCESS_KEY/S3_SECRET_KEY are set while S3_AUTH='iam'"):
        WorkerSettings(s3_auth="iam", s3_access_key="AKIAREALKEY", s3_secret_key="")


def test_static_mode_outside_dev_refuses_missing_or_placeholder_keys() -> None:
    with pytest.raises(ValueError, match="S3_ACCESS_KEY is empty or a placeholder") as err:
        WorkerSettings(**PROD, s3_access_key="", s3_secret_key="changeme")
    assert "S3_SECRET_KEY is empty or a placeholder" in str(err.value)
    ok = WorkerSettings(**PROD, s3_access_key="AKIA4REALKEY", s3_secret_key="d8f1c0e9b7a6")
    assert set(ok.s3_credentials()) == {"access_key", "secret_key"}
    # In dev the laptop's empty keys are fine.
    assert WorkerSettings().s3_auth == "static"


def test_ops_settings_do_not_need_page_storage_keys() -> None:
    # The snapshot CronJob only talks to the snapshots bucket through boto3's default chain (IRSA).
    assert OpsSettings(**PROD).s3_auth == "static"


def test_secret_files_are_read_from_settings_secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "qdrant_api_key").write_text("q-from-file-7a2d")
    (secrets / "redis_url").write_text("rediss://:tok@cache.example:6379/0")
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("S3_AUTH", "iam")
    settings = WorkerSettings(**{k: v for k, v in PROD.items() if k != "qdrant_api_key"})
    assert settings.qdrant_api_key is not None and settings.qdrant_api_key.get_secret_value() == "q-from-file-7a2d"
    assert settings.redis_url == "rediss://:tok@cache.example:6379/0"
    assert OpsSettings(**{k: v for k, v in PROD.items() if k != "qdrant_api_key"}).qdrant_api_key is not None


def test_a_missing_secrets_dir_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "not-mounted"
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(missing))
    with pytest.raises(ValueError, match=f"SETTINGS_SECRETS_DIR='{missing}' is not a directory"):
        WorkerSettings()


async def test_worker_storage_signs_with_the_web_identity_in_iam_mode(
    fake_sts: FakeSts, irsa_env: None, seaweed_s3: Any, s3_buckets: Any
) -> None:
    fake_sts.session_token = ""  # SeaweedFS knows no session tokens; the keys STS hands out are its own
    settings = WorkerSettings(
        s3_auth="iam",
        s3_sts_endpoint=fake_sts.url,
        s3_endpoint=seaweed_s3.endpoint,
        s3_bucket_pages=s3_buckets.pages,
        s3_sse="s3",
    )
    indexer = build_indexer(settings, jobs=None)
    try:
        await indexer.storage.put_bytes("pages/doc-irsa/00001.jpg", b"jpeg", "image/jpeg")
        assert await indexer.storage.get_bytes("pages/doc-irsa/00001.jpg") == b"jpeg"
    finally:
        await indexer.embedder.aclose()
    assert fake_sts.calls and fake_sts.calls[0]["RoleArn"] == ROLE_ARN
    assert fake_sts.calls[0]["WebIdentityToken"] == WEB_IDENTITY_TOKEN


def test_retry_budget_is_sized_from_the_embedder_cold_start() -> None:
    """Total job backoff >= WORKER_EMBEDDER_COLD_START_S, with WORKER_MAX_TRIES as the floor."""
    deployed = WorkerSettings(worker_embedder_cold_start_s=900)  # the embedder's startup-probe budget
    # 2, 4, 8, 16, 32, 64, then 120 s each: 13 waits = 966 s >= 900 s, so 14 attempts (12 waits: 846 s < 900 s).
    assert deployed.max_tries == 14
    assert deployed.retry_budget_s(14) == 966 and deployed.retry_budget_s(13) == 846
    # The old budget: 5 tries, 30 s of backoff, dead-lettered every job that met a restarting embedder.
    assert WorkerSettings(worker_embedder_cold_start_s=0).max_tries == 5
    assert WorkerSettings(worker_embedder_cold_start_s=0).retry_budget_s(5) == 30
    assert WorkerSettings(worker_embedder_cold_start_s=10, worker_max_tries=9).max_tries == 9  # the floor holds


def test_a_retry_budget_that_cannot_cover_the_cold_start_is_refused() -> None:
    with pytest.raises(ValueError, match="WORKER_EMBEDDER_COLD_START_S=3600") as err:
        WorkerSettings(worker_embedder_cold_start_s=3600, worker_retry_base_s=0.1, worker_retry_max_s=1)
    assert "WORKER_RETRY_MAX_S" in str(err.value)
