"""Tracing and error tracking in the deployment: observability.otlpEndpoint and the visionrag:sentryDsn secret.

Both are optional. Unset, nothing about them exists in the graph. Set, the api gets OTEL_EXPORTER_OTLP_ENDPOINT
(and an egress rule to an in-cluster collector), and the api and worker get the DSN as the `sentry_dsn` settings
file, carried from Pulumi secret config through a CMK-encrypted Secrets Manager secret and an ExternalSecret. The
DSN never appears in the recorded graph.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.api.settings import Settings
from app.worker.settings import WorkerSettings
from stacks.config import ConfigError
from stacks.engine.offline import SECRET, Record, run_stack
from tests.infra.workloads.graph import DEPLOYMENT, NETPOL, by_name, containers, pod_template

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SM_SECRET = "aws:secretsmanager/secret:Secret"
SM_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
DSN = "https://c0ffee1234known5678dsn@o99.ingest.sentry.example/4242"
IN_CLUSTER = "http://otel-collector.observability.svc.cluster.local:4318"
MANAGED = "https://otlp.vendor.example"


CANARY = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag/api@sha256:" + "c" * 64, "weight": 10}


def _with(record_of: Callable[..., Record], endpoint: str | None, dsn: str, **extra: Any) -> Record:
    overrides = {"visionrag:observability": {"otlpEndpoint": endpoint}} if endpoint else {}
    return record_of("prod", overrides={**overrides, **extra}, secrets={"visionrag:sentryDsn": dsn})


@pytest.fixture(scope="module")
def configured(record_of: Callable[..., Record]) -> Record:
    # With a canary: the second api Deployment must get the same wiring as the first.
    return _with(record_of, IN_CLUSTER, DSN, **{"visionrag:workloads": {"canary": CANARY}})


def _env(record: Record, deployment: str) -> dict[str, dict[str, Any]]:
    pod = pod_template(by_name(record, DEPLOYMENT, deployment))
    return {c["name"]: {e["name"]: e.get("value") for e in c.get("env") or []} for c in containers(pod)}


def _secret_files(record: Record, deployment: str) -> dict[str, str]:
    """Kubernetes Secret name -> settings file of the 'secrets' volume (single-key secrets only)."""
    pod = pod_template(by_name(record, DEPLOYMENT, deployment))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "secrets")
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


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_nothing_is_wired_when_unset(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    for deployment in ("api", "worker"):
        for container, env in _env(record, deployment).items():
            assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env, f"{stack}/{deployment}/{container}"
        assert "sentry-dsn" not in _secret_files(record, deployment)
    assert not [s for s in record.of_type(SM_SECRET) if s.inputs["name"].endswith("/sentry-dsn")]
    assert "sentry-dsn" not in {e.inputs["metadata"]["name"] for e in record.of_type(EXTERNAL_SECRET)}
    assert "sentry-dsn" not in record.outputs["secretNames"]


def test_api_exports_traces_to_the_configured_collector(configured: Record) -> None:
    for deployment in ("api", "api-canary"):
        env = _env(configured, deployment)
        assert env["api"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == IN_CLUSTER
        assert env["api"]["OTEL_SERVICE_NAME"] == "visionrag-api"
    # The worker has no tracer (app/worker/__main__.py sets up Sentry only): an endpoint there would be ignored.
    for container, env in _env(configured, "worker").items():
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env, container


def test_api_may_reach_an_in_cluster_collector_and_nothing_more(configured: Record, records: dict[str, Record]) -> None:
    rules = _collector_rules(configured, "api")
    assert rules == [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
            "ports": [{"port": 4318, "protocol": "TCP"}],
        }
    ]
    assert _collector_rules(configured, "worker") == []
    assert _collector_rules(records["prod"], "api") == []
    # The other egress rules are untouched by the collector.
    assert len(_egress(configured, "api")) == len(_egress(records["prod"], "api")) + 1


def test_a_managed_collector_needs_no_extra_egress(
    record_of: Callable[..., Record], records: dict[str, Record]
) -> None:
    record = _with(record_of, MANAGED, "")
    assert _env(record, "api")["api"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == MANAGED
    # 443 to anywhere but the metadata service is already allowed: the policy stays as it was.
    assert _egress(record, "api") == _egress(records["prod"], "api")
    assert any({"port": 443, "protocol": "TCP"} in (r.get("ports") or []) for r in _egress(record, "api"))


def test_sentry_dsn_is_a_cmk_secret_mounted_as_the_settings_file(configured: Record) -> None:
    secrets = {s.inputs["name"]: s for s in configured.of_type(SM_SECRET)}
    sentry, llm = secrets["visionrag-prod/sentry-dsn"], secrets["visionrag-prod/llm-api-key"]
    assert sentry.inputs["kmsKeyId"] == llm.inputs["kmsKeyId"]
    assert sentry.inputs["recoveryWindowInDays"] == llm.inputs["recoveryWindowInDays"]
    versions = [v for v in configured.of_type(SM_VERSION) if sentry.urn in v.dependencies]
    assert [v.inputs["secretString"] for v in versions] == [SECRET]
    assert configured.outputs["secretNames"]["sentry-dsn"] == "visionrag-prod/sentry-dsn"

    external = by_name(configured, EXTERNAL_SECRET, "sentry-dsn").inputs["spec"]
    assert external["data"][0]["remoteRef"]["key"] == "visionrag-prod/sentry-dsn"
    assert external["secretStoreRef"] == {"kind": "SecretStore", "name": "aws-secrets-manager"}

    for deployment in ("api", "api-canary", "worker"):
        assert _secret_files(configured, deployment)["sentry-dsn"] == "sentry_dsn", deployment
    # Both processes read that file (pydantic-settings secrets_dir: one file per field).
    assert "sentry_dsn" in Settings.model_fields and "sentry_dsn" in WorkerSettings.model_fields
    assert "otel_exporter_otlp_endpoint" in Settings.model_fields


def test_the_secrets_reader_may_read_the_sentry_secret(configured: Record) -> None:
    arn = next(s for s in configured.of_type(SM_SECRET) if s.inputs["name"].endswith("/sentry-dsn")).outputs["arn"]
    policies = [
        p for p in configured.of_type("aws:iam/rolePolicy:RolePolicy") if "ReadProjectSecrets" in p.inputs["policy"]
    ]
    assert len(policies) == 1
    statement = next(
        s for s in json.loads(policies[0].inputs["policy"])["Statement"] if s["Sid"] == "ReadProjectSecrets"
    )
    assert arn in statement["Resource"]


def test_the_dsn_never_reaches_the_record(configured: Record) -> None:
    text = json.dumps({"plan": configured.to_plan(), "outputs": configured.outputs}, default=str)
    assert DSN not in text
    assert "c0ffee1234known5678dsn" not in text


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
        run_stack("prod", overrides={"visionrag:observability": {"otlpEndpoint": endpoint}})
    message = str(exc.value)
    assert "otlpEndpoint" in message and endpoint in message and fragment in message
    assert "allowed:" in message
