"""The ops commands' environment pointed at the real local parts: SeaweedFS (pages + audit buckets), redis-server,
qdrant local on disk (a path, so a command's own client and the test's see the same collection, one at a time)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.ops.settings import get_ops_settings
from app.worker.settings import get_worker_settings


@dataclass
class OpsEnv:
    qdrant_path: str
    seaweed: Any
    buckets: Any
    redis_url: str

    def audit_events(self) -> list[dict[str, Any]]:
        keys = sorted(self.seaweed.object_names(self.buckets.audit, "audit/"))
        return [json.loads(self.seaweed.read(self.buckets.audit, key)) for key in keys]


def _clear() -> None:
    get_ops_settings.cache_clear()
    get_worker_settings.cache_clear()


@pytest.fixture
def ops_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seaweed_s3: Any, s3_buckets: Any, clean_redis: str
) -> Iterator[OpsEnv]:
    qdrant_path = str(tmp_path / "qdrant")
    values = {
        "ENVIRONMENT": "dev",
        "LOG_JSON": "false",
        "REDIS_URL": clean_redis,
        "S3_ENDPOINT": seaweed_s3.endpoint,
        "S3_ACCESS_KEY": seaweed_s3.access_key,
        "S3_SECRET_KEY": seaweed_s3.secret_key,
        "S3_REGION": seaweed_s3.region,
        "S3_SECURE": "false",
        "S3_SSE": "s3",
        "S3_BUCKET_PAGES": s3_buckets.pages,
        "S3_BUCKET_AUDIT": s3_buckets.audit,
        "QDRANT_URL": qdrant_path,
        "AUDIT_ACTOR": "system:serviceaccount:visionrag:ops-test",
        "HOSTNAME": "ops-test-pod",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    _clear()
    yield OpsEnv(qdrant_path=qdrant_path, seaweed=seaweed_s3, buckets=s3_buckets, redis_url=clean_redis)
    _clear()
