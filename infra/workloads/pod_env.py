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
from infra.workloads.embedder import STARTUP_BUDGET_S as EMBEDDER_STARTUP_BUDGET_S
from infra.workloads.qdrant import node_urls
from infra.workloads.quotas import ApiQuotas
from infra.workloads.rate_limits import ApiRateLimits
from infra.workloads.uploads import upload_env

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
    quotas: ApiQuotas | None = None,
    tracing: Mapping[str, str] | None = None,
    scanner: tuple[str, int] | None = None,
) -> Env:
    """The api's (and its canary's) settings on top of `app` (app_env); `scanner`: clamd's (host, port)."""
    return {
        **app,
        "LOG_JSON": "true",
        "S3_BUCKET_AUDIT": audit_bucket,
        "ALLOWED_ORIGINS": ",".join(allowed_origins),
        # The ALB's subnets: the only peers whose X-Forwarded-For is believed (a pod's address never is).
        "TRUSTED_PROXIES": ",".join(alb_cidrs),
        # /health is the readiness probe: an embedder that is loading (or scaling its GPU node from zero)
        # must degrade search to 503s, not pull every api pod (uploads, documents, jobs) out of the ALB.
        # The same for the malware scanner: with clamd down uploads are refused (503), everything else still serves.
        "HEALTH_OPTIONAL_DEPENDENCIES": ",".join(["embedder", *(["malware-scanner"] if scanner else [])]),
        # None: the app's own defaults (app/api/settings.py RATE_LIMIT_*).
        **(rate_limits.env() if rate_limits else {}),
        # None: the app's own defaults (no quotas, moderation off); stacks always set them (workloads.quotas).
        **(quotas.env() if quotas else {}),
        # tracing_env(service="visionrag-api", ...); None: tracing off.
        **(tracing or {}),
        # The upload caps and the process count the pod's /tmp is sized from (infra/workloads/uploads.py), in every
        # stack; clamd's StreamMaxLength is rendered from the same MAX_UPLOAD_MB, so it never cuts an accepted file.
        **upload_env(),
        # Every upload is streamed to clamd (app/api/malware.py).
        **({"CLAMD_HOST": scanner[0], "CLAMD_PORT": str(scanner[1])} if scanner else {}),
    }


def worker_env(
    app: Mapping[str, pulumi.Input[str]],
    *,
    qdrant_replication_factor: int,
    tracing: Mapping[str, str] | None = None,
) -> Env:
    """The worker's settings on top of `app` (app_env); `tracing`: tracing_env(service="visionrag-worker", ...)."""
    return {
        **app,
        **(tracing or {}),
        # The worker creates the collection: its copies must match the cluster's replication.
        "QDRANT_REPLICATION_FACTOR": str(qdrant_replication_factor),
        # Job retries back off at least as long as the embedder's startup probe allows it to come up.
        "WORKER_EMBEDDER_COLD_START_S": str(EMBEDDER_STARTUP_BUDGET_S),
    }


def embedder_env(*, tier: str, log_level: str, tracing: Mapping[str, str] | None = None) -> Env:
    """The embedder's settings: its own carry the EMBEDDER_ prefix, its log level is lower case (uvicorn's); the
    tracing variables keep the names every process shares (app/embedder/settings.py reads them unprefixed)."""
    return {"EMBEDDER_LOG_LEVEL": log_level.lower(), "EMBEDDER_ENVIRONMENT": tier, **(tracing or {})}


# OTEL_TRACES_SAMPLER: a new trace is kept with the ratio; a call inside a trace follows its caller's decision.
TRACES_SAMPLER = "parentbased_traceidratio"


def tracing_env(*, endpoint: str, service: str, sample_ratio: float) -> dict[str, str]:
    """One process's tracing settings (app/core/telemetry.py): the collector, its service name, the sampler.

    The OpenTelemetry SDK's own environment names, so the same values mean the same thing to any SDK. The tier
    reaches every span as the `deployment.environment` resource attribute from ENVIRONMENT (EMBEDDER_ENVIRONMENT),
    which each process already reads: no OTEL_RESOURCE_ATTRIBUTES that its settings would not know."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_SAMPLER": TRACES_SAMPLER,
        "OTEL_TRACES_SAMPLER_ARG": format(sample_ratio, "g"),
    }


def audit_env(*, audit_bucket: pulumi.Input[str], namespace: str, service_account: str) -> Env:
    """Where a process outside a request appends its audit events (app/core/audit.py), and who it is there: its
    ServiceAccount (the pod name is added by the app from HOSTNAME). The api's actor is the caller's token instead."""
    return {
        "S3_BUCKET_AUDIT": audit_bucket,
        "AUDIT_ACTOR": f"system:serviceaccount:{namespace}:{service_account}",
    }


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
    audit_bucket: pulumi.Input[str],
    service_account: str = "snapshots",
) -> Env:
    """The snapshot job's (and the restore drill's) settings (app/ops/settings.py): every Qdrant node, the snapshots
    bucket, retention, and the audit bucket their audit events go to (through IRSA, like the snapshots)."""
    return {
        **audit_env(audit_bucket=audit_bucket, namespace=namespace, service_account=service_account),
        # The audit writer (app/ops/audit_trail.py) signs with the pod's web identity; boto3 (snapshots) does anyway.
        "S3_AUTH": "iam",
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
