"""Tracing and error tracking in the deployment.

Tracing is on in every tier: an in-cluster OpenTelemetry collector (infra/workloads/otel_collector.py, upstream
chart, IRSA role that may only write to X-Ray) receives OTLP from the api, worker and embedder only, each of which
gets the OTEL_* variables with its tier's sampling ratio. `observability.otlpEndpoint` replaces the collector by a
managed one; `observability.tracing: false` removes everything. The per-stack `visionrag:sentryDsn` secret reaches
the api, worker, embedder and frontend as a settings file through a CMK-encrypted Secrets Manager secret and an
ExternalSecret; unset, nothing about it exists. The DSN never appears in the recorded graph.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import AliasChoices

from app.api.settings import Settings
from app.embedder.settings import EmbedderSettings
from app.worker.settings import WorkerSettings
from infra.workloads.otel_collector import IMAGE, OTLP_GRPC_PORT, OTLP_HTTP_PORT, XRAY_ACTIONS
from stacks.config import ConfigError
from stacks.engine.offline import SECRET, Record, run_stack
from tests.infra.workloads.graph import (
    DEPLOYMENT,
    NETPOL,
    RELEASE,
    by_name,
    containers,
    pod_template,
    role_policy_for,
    trust_for,
)

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SM_SECRET = "aws:secretsmanager/secret:Secret"
SM_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
DSN = "https://c0ffee1234known5678dsn@o99.ingest.sentry.example/4242"
COLLECTOR = "http://otel-collector.visionrag-system.svc.cluster.local:4318"
MANAGED = "https://otlp.vendor.example"
RATIOS = {"dev": "1", "staging": "0.25", "prod": "0.05"}
TRACED = {"api": "visionrag-api", "worker": "visionrag-worker", "embedder": "visionrag-embedder"}
CANARY = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api@sha256:" + "c" * 64, "weight": 10}


def _observability(**extra: Any) -> dict[str, Any]:
    return {"visionrag:observability": extra}


@pytest.fixture(scope="module")
def with_dsn(record_of: Callable[..., Record]) -> Record:
    # With a canary: the second api Deployment must get the same wiring as the first.
    return record_of(
        "prod", overrides={"visionrag:workloads": {"canary": CANARY}}, secrets={"visionrag:sentryDsn": DSN}
    )


def _env(record: Record, deployment: str) -> dict[str, dict[str, Any]]:
    pod = pod_template(by_name(record, DEPLOYMENT, deployment))
    return {c["name"]: {e["name"]: e.get("value") for e in c.get("env") or []} for c in containers(pod)}


def _secret_files(record: Record, deployment: str) -> dict[str, str]:
    """Kubernetes Secret name -> settings file of the 'secrets' volume (single-key secrets only)."""
    pod = pod_template(by_name(record, DEPLOYMENT, deployment))
    volume = next((v for v in pod["spec"]["volumes"] if v["name"] == "secrets"), None)
    if volume is None:
        return {}
    return {
        s["secret"]["name"]: item["path"]
        for s in volume["projected"]["sources"]
        for item in s["secret"]["items"]
        if item["key"] == "value"
    }


def _egress(record: Record, policy: str) -> list[dict[str, Any]]:
    return list(by_name(record, NETPOL, f"allow-{policy}").inputs["spec"].get("egress") or [])


def _collector_rules(record: Record, policy: str) -> list[dict[str, Any]]:
    return [r for r in _egress(record, policy) if any("namespaceSelector" in peer for peer in r.get("to") or [])]


def _releases(record: Record) -> list[Any]:
    return [r for r in record.of_type(RELEASE) if r.inputs["name"] == "otel-collector"]


# --- tracing: on by default ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_tier_traces_api_worker_and_embedder_to_the_collector(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    assert len(_releases(record)) == 1
    for deployment, service in TRACED.items():
        env = _env(record, deployment)[deployment]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == COLLECTOR, (stack, deployment)
        assert env["OTEL_SERVICE_NAME"] == service
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == RATIOS[stack]
        # The tier becomes the spans' deployment.environment (app/core/telemetry.py) from the settings' own tier.
        assert (env.get("ENVIRONMENT") or env.get("EMBEDDER_ENVIRONMENT")) == stack
    # The names the processes read (app settings fields; the embedder's without its EMBEDDER_ prefix).
    for cls in (Settings, WorkerSettings):
        assert {"otel_exporter_otlp_endpoint", "otel_traces_sampler", "otel_traces_sampler_arg"} <= set(
            cls.model_fields
        )
    aliases = {
        str(f.validation_alias.choices[0])
        for f in EmbedderSettings.model_fields.values()
        if isinstance(f.validation_alias, AliasChoices)
    }
    assert {"otel_exporter_otlp_endpoint", "otel_traces_sampler_arg", "otel_service_name", "sentry_dsn"} <= aliases


def test_only_the_traced_workloads_may_reach_the_collector(records: dict[str, Record]) -> None:
    record = records["prod"]
    rule = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "visionrag-system"}}}],
        "ports": [{"port": OTLP_HTTP_PORT, "protocol": "TCP"}],
    }
    for policy in TRACED:
        assert _collector_rules(record, policy) == [rule], policy
    for policy in ("qdrant", "snapshots", "frontend"):
        assert _collector_rules(record, policy) == [], policy
    # The collector's own policy: in only from those pods of the app namespace, on OTLP only.
    spec = by_name(record, NETPOL, "allow-otel-collector").inputs["spec"]
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "opentelemetry-collector",
        "app.kubernetes.io/instance": "otel-collector",
    }
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    [ingress] = spec["ingress"]
    assert sorted(p["port"] for p in ingress["ports"]) == [OTLP_GRPC_PORT, OTLP_HTTP_PORT]
    peers = ingress["from"]
    assert {p["podSelector"]["matchLabels"]["visionrag.io/role"] for p in peers} == set(TRACED)
    assert all(p["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "visionrag"} for p in peers)
    # Out: 443 (X-Ray, STS) to anywhere but the node's credential endpoints.
    [egress] = spec["egress"]
    assert egress["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "169.254.169.254/32" in egress["to"][0]["ipBlock"]["except"]


def test_the_collector_release_is_pinned_and_exports_only_to_xray(records: dict[str, Record]) -> None:
    [release] = _releases(records["prod"])
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"]) == ("opentelemetry-collector", "0.170.0")
    assert inputs["namespace"] == "visionrag-system"
    values = inputs["values"]
    repository, tag, digest = IMAGE
    assert values["image"] == {"repository": repository, "tag": tag, "digest": digest, "pullPolicy": "IfNotPresent"}
    assert digest.startswith("sha256:") and len(digest) == 71
    config = values["alternateConfig"]
    assert config["service"]["pipelines"] == {
        "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["awsxray"]}
    }
    assert set(config["receivers"]) == {"otlp"} and set(config["exporters"]) == {"awsxray"}
    assert config["exporters"]["awsxray"]["region"] == "us-east-1"
    assert "health_check" in config["service"]["extensions"]  # the chart refuses to render without it
    # X-Ray takes at most 50 segments per PutTraceSegments call.
    assert config["processors"]["batch"]["send_batch_size"] <= 50
    assert values["serviceAccount"] == {
        "create": False,
        "name": "otel-collector",
        "automountServiceAccountToken": False,
    }
    assert values["replicaCount"] == 2 and values["podDisruptionBudget"]["enabled"] is True
    assert all(not values["ports"][p]["enabled"] for p in ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin"))
    assert values["resources"]["limits"]["memory"]  # memory_limiter and GOMEMLIMIT work from it
    [dev] = _releases(records["dev"])
    assert dev.inputs["values"]["replicaCount"] == 1  # as available as dev's single api


def test_the_collector_may_only_write_traces(records: dict[str, Record]) -> None:
    policy = role_policy_for(records["prod"], "otel-collector")
    assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [(XRAY_ACTIONS, ["*"])]
    trust = json.dumps(trust_for(records["prod"], "otel-collector"))
    assert "system:serviceaccount:visionrag-system:otel-collector" in trust


def test_a_managed_collector_replaces_the_in_cluster_one(
    record_of: Callable[..., Record], records: dict[str, Record]
) -> None:
    record = record_of("prod", overrides=_observability(otlpEndpoint=MANAGED))
    assert _releases(record) == []
    for deployment in TRACED:
        assert _env(record, deployment)[deployment]["OTEL_EXPORTER_OTLP_ENDPOINT"] == MANAGED
        # 443 to anywhere but the metadata service is already allowed: no collector rule.
        assert _collector_rules(record, deployment) == []
    assert any({"port": 443, "protocol": "TCP"} in (r.get("ports") or []) for r in _egress(record, "api"))
    assert len(record.resources) < len(records["prod"].resources)


def test_tracing_off_leaves_nothing_behind(record_of: Callable[..., Record]) -> None:
    record = record_of("staging", overrides=_observability(tracing=False))
    assert _releases(record) == []
    for deployment in (*TRACED, "frontend"):
        for container, env in _env(record, deployment).items():
            # OTEL_SERVICE_NAME may stay (the api names itself in logs and Sentry with it); nothing that exports.
            assert not [k for k in env if k.startswith("OTEL_") and k != "OTEL_SERVICE_NAME"], (deployment, container)
    for policy in TRACED:
        assert _collector_rules(record, policy) == []
    assert not [p for p in record.of_type(NETPOL) if p.inputs["metadata"]["name"] == "allow-otel-collector"]


@pytest.mark.parametrize("ratio", [1.5, -0.1])
def test_a_sampling_ratio_outside_0_1_is_refused_naming_the_key(ratio: float) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("prod", overrides=_observability(traceSampleRatio=ratio))
    message = str(exc.value)
    assert "traceSampleRatio" in message and str(ratio) in message and "allowed: 0.0" in message


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("http://collector.example.com", "must be https on port 443"),
        ("https://collector.example.com:4318", "must be https on port 443"),
        ("grpc://otel-collector.observability.svc:4317", "is not an http(s) URL"),
        ("https://user:pw@otlp.vendor.example", "credentials"),
        ("https://otlp.vendor.example/v1/traces", "a path"),
        ("https://otlp.vendor.example:99999", "is not a URL"),
    ],
)
def test_bad_otlp_endpoints_are_refused_naming_the_key(endpoint: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("prod", overrides=_observability(otlpEndpoint=endpoint))
    message = str(exc.value)
    assert "otlpEndpoint" in message and endpoint in message and fragment in message
    assert "allowed:" in message


# --- Sentry ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_sentry_wiring_without_a_dsn(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    for deployment in (*TRACED, "frontend"):
        assert "sentry-dsn" not in _secret_files(record, deployment), deployment
        for env in _env(record, deployment).values():
            assert "SENTRY_DSN_FILE" not in env
    assert not [s for s in record.of_type(SM_SECRET) if s.inputs["name"].endswith("/sentry-dsn")]
    assert "sentry-dsn" not in {e.inputs["metadata"]["name"] for e in record.of_type(EXTERNAL_SECRET)}
    assert "sentry-dsn" not in record.outputs["secretNames"]


def test_sentry_dsn_is_a_cmk_secret_mounted_in_every_service(with_dsn: Record) -> None:
    secrets = {s.inputs["name"]: s for s in with_dsn.of_type(SM_SECRET)}
    sentry, llm = secrets["visionrag-prod/sentry-dsn"], secrets["visionrag-prod/llm-api-key"]
    assert sentry.inputs["kmsKeyId"] == llm.inputs["kmsKeyId"]
    assert sentry.inputs["recoveryWindowInDays"] == llm.inputs["recoveryWindowInDays"]
    versions = [v for v in with_dsn.of_type(SM_VERSION) if sentry.urn in v.dependencies]
    assert [v.inputs["secretString"] for v in versions] == [SECRET]
    assert with_dsn.outputs["secretNames"]["sentry-dsn"] == "visionrag-prod/sentry-dsn"

    external = by_name(with_dsn, EXTERNAL_SECRET, "sentry-dsn").inputs["spec"]
    assert external["data"][0]["remoteRef"]["key"] == "visionrag-prod/sentry-dsn"

    for deployment in ("api", "api-canary", "worker", "embedder", "frontend"):
        assert _secret_files(with_dsn, deployment)["sentry-dsn"] == "sentry_dsn", deployment
    # The embedder reads its settings files from SETTINGS_SECRETS_DIR like the api and the worker; the frontend's
    # server reads SENTRY_DSN_FILE (frontend/src/env.ts, frontend/src/instrumentation.ts).
    embedder = _env(with_dsn, "embedder")["embedder"]
    assert embedder["SETTINGS_SECRETS_DIR"] == "/var/run/secrets/visionrag"
    frontend = next(iter(_env(with_dsn, "frontend").values()))
    assert frontend["SENTRY_DSN_FILE"].endswith("/sentry_dsn")
    for cls in (Settings, WorkerSettings, EmbedderSettings):
        assert "sentry_dsn" in cls.model_fields


def test_the_secrets_reader_may_read_the_sentry_secret(with_dsn: Record) -> None:
    arn = next(s for s in with_dsn.of_type(SM_SECRET) if s.inputs["name"].endswith("/sentry-dsn")).outputs["arn"]
    policies = [
        p for p in with_dsn.of_type("aws:iam/rolePolicy:RolePolicy") if "ReadProjectSecrets" in p.inputs["policy"]
    ]
    assert len(policies) == 1
    statement = next(
        s for s in json.loads(policies[0].inputs["policy"])["Statement"] if s["Sid"] == "ReadProjectSecrets"
    )
    assert arn in statement["Resource"]


def test_the_dsn_never_reaches_the_record(with_dsn: Record) -> None:
    text = json.dumps({"plan": with_dsn.to_plan(), "outputs": with_dsn.outputs}, default=str)
    assert DSN not in text
    assert "c0ffee1234known5678dsn" not in text
