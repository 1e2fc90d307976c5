"""The pod environment contract (infra/workloads/pod_env.py), asserted on the pure functions: no Pulumi engine.

Names and values each process gets, what is absent when a feature is off, TRUSTED_PROXIES = the ALB's subnets
(never the pods'), platform values passed through untouched, and no secret in plain env. The last test ties the
functions to what the Workloads component actually deploys (the recorded prod stack).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from app.core.settings import load
from app.core.telemetry import sampler_names
from app.worker.settings import WorkerSettings
from infra.network import subnet_layout
from infra.workloads import api as api_pod
from infra.workloads import worker as worker_pod
from infra.workloads.frontend import SECRET_FILES as FRONTEND_SECRET_FILES
from infra.workloads.network_policies import peer_cidrs
from infra.workloads.pod_env import api_env, app_env, embedder_env, snapshot_env, tracing_env, worker_env
from infra.workloads.rate_limits import ApiRateLimits
from stacks.engine.offline import Record
from tests.infra.workloads.graph import CRONJOB, DEPLOYMENT, by_name, containers, pod_template

REGION = "eu-west-1"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-1111-1111-1111-111111111111"
QDRANT = "http://qdrant.visionrag.svc.cluster.local:6333"
PEERS = peer_cidrs(subnet_layout("10.40.0.0/16", 3))
LIMITS = ApiRateLimits(per_ip_per_minute=600, search="60/minute", chat="10/minute;200/hour", upload="30/hour")


class Opaque:
    """Stands in for a pulumi.Output: the functions must pass it through, never inspect or stringify it."""

    def __str__(self) -> str:
        raise AssertionError("an Output was stringified")


def _app(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tier": "prod",
        "log_level": "info",
        "region": REGION,
        "namespace": "visionrag",
        "pages_bucket": "visionrag-prod-pages",
        "s3_key_arn": KEY,
        "qdrant_url": QDRANT,
    }
    return app_env(**{**values, **changes})


def _api(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "audit_bucket": "visionrag-prod-audit",
        "allowed_origins": ["https://example.com", "https://www.example.com"],
        "alb_cidrs": PEERS["alb_cidrs"],
    }
    return api_env(_app(), **{**values, **changes})


def test_app_env_is_the_shared_contract() -> None:
    assert _app() == {
        "ENVIRONMENT": "prod",
        "LOG_LEVEL": "INFO",
        "S3_ENDPOINT": f"s3.{REGION}.amazonaws.com",
        "S3_SECURE": "true",
        "S3_REGION": REGION,
        "S3_AUTH": "iam",  # IRSA: no static keys
        "S3_BUCKET_PAGES": "visionrag-prod-pages",
        "S3_SSE": "kms",
        "S3_KMS_KEY_ID": KEY,
        "QDRANT_URL": QDRANT,
        "QDRANT_COLLECTION": "pages",
        "EMBEDDER_URL": "http://embedder.visionrag.svc.cluster.local:7000",
    }
    assert _app(namespace="other")["EMBEDDER_URL"] == "http://embedder.other.svc.cluster.local:7000"


def test_platform_values_pass_through_untouched() -> None:
    bucket: Any = Opaque()
    key: Any = Opaque()
    env = api_env(_app(pages_bucket=bucket, s3_key_arn=key), audit_bucket=bucket, allowed_origins=(), alb_cidrs=())
    assert env["S3_BUCKET_PAGES"] is bucket and env["S3_BUCKET_AUDIT"] is bucket and env["S3_KMS_KEY_ID"] is key
    snap = snapshot_env(
        tier="dev",
        log_level="debug",
        region=REGION,
        namespace="visionrag",
        qdrant_url=QDRANT,
        qdrant_replicas=1,
        snapshots_bucket=bucket,
        s3_key_arn=key,
        keep_last=3,
        audit_bucket=bucket,
    )
    assert snap["S3_BUCKET_SNAPSHOTS"] is bucket and snap["S3_KMS_KEY_ID"] is key and snap["SNAPSHOT_KMS_KEY_ID"] is key


def test_api_env_adds_the_api_settings() -> None:
    env = _api()
    assert {k: env[k] for k in ("LOG_JSON", "S3_BUCKET_AUDIT", "ALLOWED_ORIGINS", "HEALTH_OPTIONAL_DEPENDENCIES")} == {
        "LOG_JSON": "true",
        "S3_BUCKET_AUDIT": "visionrag-prod-audit",
        "ALLOWED_ORIGINS": "https://example.com,https://www.example.com",
        "HEALTH_OPTIONAL_DEPENDENCIES": "embedder",
    }
    assert _app().items() <= env.items()
    assert _api(allowed_origins=())["ALLOWED_ORIGINS"] == ""


def test_api_env_sets_the_upload_limits_with_or_without_the_scanner() -> None:
    # One owner (infra/workloads/uploads.py) whatever the stack runs: the pod's /tmp is sized from these numbers.
    limits = {"MAX_UPLOAD_MB": "50", "MAX_UPLOAD_FILES": "10", "UPLOAD_MAX_CONCURRENT": "2", "GUNICORN_WORKERS": "2"}
    without = _api()
    scanned = _api(scanner=("clamav.visionrag-security.svc.cluster.local", 3310))
    assert {k: without.get(k) for k in limits} == {k: scanned.get(k) for k in limits} == limits
    assert "CLAMD_HOST" not in without and scanned["CLAMD_PORT"] == "3310"


def test_trusted_proxies_are_the_alb_subnets_and_no_pod_subnet() -> None:
    trusted = _api()["TRUSTED_PROXIES"].split(",")
    assert trusted == list(PEERS["alb_cidrs"]) and trusted
    pods = [ipaddress.ip_network(c) for c in PEERS["pod_cidrs"]]
    assert not any(ipaddress.ip_network(t).overlaps(p) for t in trusted for p in pods)


def test_rate_limits_are_set_only_when_the_stack_sets_them() -> None:
    assert not [k for k in _api() if k.startswith("RATE_LIMIT_")]  # None: the app's own defaults
    env = _api(rate_limits=LIMITS)
    assert {k: v for k, v in env.items() if k.startswith("RATE_LIMIT_")} == {
        "RATE_LIMIT_PER_MINUTE": "600",
        "RATE_LIMIT_SEARCH": "60/minute",
        "RATE_LIMIT_CHAT": "10/minute;200/hour",
        "RATE_LIMIT_UPLOAD": "30/hour",
    }
    assert "RATE_LIMIT_ENABLED" not in env  # a stack may not turn limiting off


def test_tracing_env_names_the_collector_the_service_the_tier_and_the_ratio() -> None:
    endpoint = "http://otel-collector.visionrag-system.svc.cluster.local:4318"
    tracing = tracing_env(endpoint=endpoint, service="visionrag-worker", sample_ratio=0.05)
    assert tracing == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "visionrag-worker",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.05",
    }
    # The sampler name and ratio are ones the apps accept (app/core/telemetry.py, app settings bounds).
    assert tracing["OTEL_TRACES_SAMPLER"] in sampler_names()
    load(WorkerSettings, otel_traces_sampler_arg=float(tracing["OTEL_TRACES_SAMPLER_ARG"]))
    # Each process gets it only when given: None means tracing off.
    assert not [k for k in _api() if k.startswith("OTEL_")]
    assert not [k for k in worker_env(_app(), qdrant_replication_factor=2) if k.startswith("OTEL_")]
    assert not [k for k in embedder_env(tier="prod", log_level="info") if k.startswith("OTEL_")]
    assert _api(tracing=tracing).items() >= tracing.items()
    assert worker_env(_app(), qdrant_replication_factor=2, tracing=tracing).items() >= tracing.items()
    # The embedder reads these without its EMBEDDER_ prefix (app/embedder/settings.py aliases).
    assert embedder_env(tier="prod", log_level="info", tracing=tracing).items() >= tracing.items()


def test_worker_env_is_the_shared_env_plus_replication() -> None:
    assert worker_env(_app(), qdrant_replication_factor=2) == {
        **_app(),
        "QDRANT_REPLICATION_FACTOR": "2",
        "WORKER_EMBEDDER_COLD_START_S": "900",
    }


def test_worker_retry_budget_outlasts_the_embedders_startup_probe() -> None:
    """One owner: the embedder's startup-probe budget is the cold start the worker's job retries must outlast."""
    from app.worker.settings import WorkerSettings
    from infra.workloads.embedder import STARTUP_BUDGET_S, STARTUP_PERIOD_S

    cold_start = worker_env(_app(), qdrant_replication_factor=1)["WORKER_EMBEDDER_COLD_START_S"]
    assert float(cold_start) == STARTUP_BUDGET_S == 90 * STARTUP_PERIOD_S
    settings = WorkerSettings(worker_embedder_cold_start_s=float(cold_start))
    assert settings.retry_budget_s(settings.max_tries) >= STARTUP_BUDGET_S
    assert settings.retry_budget_s(settings.max_tries - 1) < STARTUP_BUDGET_S  # no more tries than needed


def test_embedder_env_uses_its_prefix_and_uvicorn_log_level() -> None:
    assert embedder_env(tier="staging", log_level="WARNING") == {
        "EMBEDDER_LOG_LEVEL": "warning",
        "EMBEDDER_ENVIRONMENT": "staging",
    }


@pytest.mark.parametrize("replicas", [1, 3])
def test_snapshot_env_visits_every_qdrant_node(replicas: int) -> None:
    env = snapshot_env(
        tier="prod",
        log_level="info",
        region=REGION,
        namespace="visionrag",
        qdrant_url=QDRANT,
        qdrant_replicas=replicas,
        snapshots_bucket="visionrag-prod-snapshots",
        s3_key_arn=KEY,
        keep_last=14,
        audit_bucket="visionrag-prod-audit",
    )
    nodes = str(env["QDRANT_NODE_URLS"]).split(",")
    assert len(nodes) == len(set(nodes)) == replicas
    assert all(
        re.fullmatch(r"http://qdrant-\d\.qdrant-headless\.visionrag\.svc\.cluster\.local:6333", n) for n in nodes
    )
    assert env["S3_BUCKET_SNAPSHOTS"] == "visionrag-prod-snapshots" and env["SNAPSHOT_KEEP_LAST"] == "14"
    assert env["SNAPSHOT_SSE"] == env["S3_SSE"] == "kms" and env["SNAPSHOT_KMS_KEY_ID"] == KEY
    assert "S3_BUCKET_PAGES" not in env  # the job touches the snapshots bucket only (its IAM role agrees)
    # Its audit events: the audit bucket through IRSA, as its ServiceAccount (app/core/audit.py process_actor).
    assert env["S3_BUCKET_AUDIT"] == "visionrag-prod-audit" and env["S3_AUTH"] == "iam"
    assert env["AUDIT_ACTOR"] == "system:serviceaccount:visionrag:snapshots"


def _secret_files() -> set[str]:
    """Every settings field that arrives as a secret file (api, worker, frontend)."""
    files: set[str] = set()
    for mapping in (api_pod.SECRETS, worker_pod.SECRETS, FRONTEND_SECRET_FILES):
        for value in mapping.values():
            files |= set(value.values()) if isinstance(value, dict) else {value}
    return files | {"openai_api_key", "sentry_dsn"}


def test_no_secret_reaches_plain_env() -> None:
    secret_env = {f.upper() for f in _secret_files()}
    secretish = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|DSN|CREDENTIAL)")
    envs = [
        _api(
            rate_limits=LIMITS,
            tracing=tracing_env(endpoint="https://otlp.example.com", service="visionrag-api", sample_ratio=1),
        ),
        worker_env(_app(), qdrant_replication_factor=1),
        embedder_env(tier="prod", log_level="info"),
        snapshot_env(
            tier="prod",
            log_level="info",
            region=REGION,
            namespace="visionrag",
            qdrant_url=QDRANT,
            qdrant_replicas=3,
            snapshots_bucket="visionrag-prod-snapshots",
            s3_key_arn=KEY,
            keep_last=14,
            audit_bucket="visionrag-prod-audit",
        ),
    ]
    for env in envs:
        assert not secret_env & set(env), secret_env & set(env)
        assert not [k for k in env if secretish.search(k)]
        assert not [v for v in env.values() if isinstance(v, str) and "rediss://" in v]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or []}


def test_the_deployed_pods_get_these_functions_output(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    api = _env(containers(pod_template(by_name(record, DEPLOYMENT, "api")))[0])
    worker = _env(containers(pod_template(by_name(record, DEPLOYMENT, "worker")))[0])
    snapshots = _env(containers(pod_template(by_name(record, CRONJOB, "snapshots")))[0])
    shared = {k: api[k] for k in _app()}
    assert (
        api_env(
            shared,
            audit_bucket=api["S3_BUCKET_AUDIT"],
            allowed_origins=api["ALLOWED_ORIGINS"].split(","),
            alb_cidrs=api["TRUSTED_PROXIES"].split(","),
            rate_limits=ApiRateLimits(
                per_ip_per_minute=int(api["RATE_LIMIT_PER_MINUTE"]),
                search=api["RATE_LIMIT_SEARCH"],
                chat=api["RATE_LIMIT_CHAT"],
                upload=api["RATE_LIMIT_UPLOAD"],
            ),
            tracing={k: v for k, v in api.items() if k.startswith("OTEL_")},
            scanner=(api["CLAMD_HOST"], int(api["CLAMD_PORT"])) if "CLAMD_HOST" in api else None,
        ).items()
        <= api.items()
    )
    assert worker_env(shared, qdrant_replication_factor=int(worker["QDRANT_REPLICATION_FACTOR"])).items() <= (
        worker.items()
    )
    assert shared["ENVIRONMENT"] == "prod" and snapshots["QDRANT_URL"] == shared["QDRANT_URL"]
