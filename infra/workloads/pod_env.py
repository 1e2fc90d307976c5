"""The pod environment: the app's non-secret settings, as env vars, for each process the cluster runs.

This is the deployment's side of the app contract. Names are the app's settings fields (app/api/settings.py,
app/worker/settings.py, app/embedder/settings.py, app/ops/settings.py); tests/infra/workloads/test_app_contract.py
asserts the recorded pods against those settings classes, tests/infra/workloads/test_pod_env.py asserts these
functions directly (names, values, what is absent when a feature is off).

Pure functions of plain values: no resource is created and nothing here needs the Pulumi engine. Values the platform
only knows at deploy time (bucket names, the KMS key ARN) are passed through untouched as opaque `pulumi.Input`s.
Secrets never appear here: they reach the pods as files (infra/workloads/container.py secrets_volume, read through
SETTINGS_SECRETS_DIR), so no function below takes a secret value. Variables that belong to one container's wiring
rather than to the app's settings (ports, SETTINGS_SECRETS_DIR, the embedder's model paths, the frontend's Auth.js
settings) stay with that container's builder (api.py, worker.py, embedder.py, frontend.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from infra.workloads.embedder import HTTP_PORT as EMBEDDER_PORT
from infra.workloads.qdrant import node_urls
from infra.workloads.rate_limits import ApiRateLimits

Env = dict[str, pulumi.Input[str]]

QDRANT_COLLECTION = "pages"


def _s3(region: str) -> Env:
    """The regional S3 endpoint over TLS; every S3 user's base."""
    return {"S3_ENDPOINT": f"s3.{region}.amazonaws.com", "S3_SECURE": "true", "S3_REGION": region}


def app_env(
    *,
    tier: str,
    log_level: str,
    region: str,
    namespace: str,
    pages_bucket: pulumi.Input[str],
    s3_key_arn: pulumi.Input[str],
    qdrant_url: str,
) -> Env:
    """What the api and the worker share: tier, logging, the pages bucket (SSE-KMS), Qdrant and the embedder."""
    return {
        "ENVIRONMENT": tier,
        "LOG_LEVEL": log_level.upper(),
        **_s3(region),
        # IRSA: no static keys exist; the app signs with the web-identity credentials EKS injects.
        "S3_AUTH": "iam",
        "S3_BUCKET_PAGES": pages_bucket,
        "S3_SSE": "kms",
        "S3_KMS_KEY_ID": s3_key_arn,
        "QDRANT_URL": qdrant_url,
        "QDRANT_COLLECTION": QDRANT_COLLECTION,
        "EMBEDDER_URL": f"http://embedder.{namespace}.svc.cluster.local:{EMBEDDER_PORT}",
    }


def api_env(
    app: Mapping[str, pulumi.Input[str]],
    *,
    audit_bucket: pulumi.Input[str],
    allowed_origins: Sequence[str],
    alb_cidrs: Sequence[str],
    rate_limits: ApiRateLimits | None = None,
    otlp_endpoint: str | None = None,
) -> Env:
    """The api's (and its canary's) settings on top of `app` (app_env)."""
    return {
        **app,
        "LOG_JSON": "true",
        "S3_BUCKET_AUDIT": audit_bucket,
        "ALLOWED_ORIGINS": ",".join(allowed_origins),
        # The ALB's subnets: the only peers whose X-Forwarded-For is believed (a pod's address never is).
        "TRUSTED_PROXIES": ",".join(alb_cidrs),
        # /health is the readiness probe: an embedder that is loading (or scaling its GPU node from zero)
        # must degrade search to 503s, not pull every api pod (uploads, documents, jobs) out of the ALB.
        "HEALTH_OPTIONAL_DEPENDENCIES": "embedder",
        # None: the app's own defaults (app/api/settings.py RATE_LIMIT_*).
        **(rate_limits.env() if rate_limits else {}),
        # Only the api traces (app/core/telemetry.setup_tracing); the worker has no tracer to point anywhere.
        **({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint} if otlp_endpoint else {}),
    }


def worker_env(app: Mapping[str, pulumi.Input[str]], *, qdrant_replication_factor: int) -> Env:
    """The worker's settings on top of `app` (app_env)."""
    return {
        **app,
        # The worker creates the collection: its copies must match the cluster's replication.
        "QDRANT_REPLICATION_FACTOR": str(qdrant_replication_factor),
    }


def embedder_env(*, tier: str, log_level: str) -> Env:
    """The embedder's settings: all carry the EMBEDDER_ prefix; its log level is lower case (uvicorn's)."""
    return {"EMBEDDER_LOG_LEVEL": log_level.lower(), "EMBEDDER_ENVIRONMENT": tier}


def snapshot_env(
    *,
    tier: str,
    log_level: str,
    region: str,
    namespace: str,
    qdrant_url: str,
    qdrant_replicas: int,
    snapshots_bucket: pulumi.Input[str],
    s3_key_arn: pulumi.Input[str],
    keep_last: int,
) -> Env:
    """The snapshot job's settings (app/ops/settings.py): every Qdrant node, the snapshots bucket, retention."""
    return {
        "ENVIRONMENT": tier,
        "LOG_LEVEL": log_level.upper(),
        "QDRANT_URL": qdrant_url,
        # Each node snapshots its own shards: the job visits every pod through the headless Service.
        "QDRANT_NODE_URLS": ",".join(node_urls(namespace, qdrant_replicas)),
        "QDRANT_COLLECTION": QDRANT_COLLECTION,
        **_s3(region),
        "S3_SSE": "kms",
        "S3_KMS_KEY_ID": s3_key_arn,
        "S3_BUCKET_SNAPSHOTS": snapshots_bucket,
        "SNAPSHOT_KEEP_LAST": str(keep_last),
        "SNAPSHOT_SSE": "kms",
        "SNAPSHOT_KMS_KEY_ID": s3_key_arn,
    }
