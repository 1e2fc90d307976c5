"""TargetGroupBindings, ExternalSecrets/SecretStore and the canary."""

from __future__ import annotations

from typing import Any

from stacks.engine.offline import Record
from tests.infra.workloads.graph import DEPLOYMENT, TGB, by_name, name

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SECRET_STORE = "kubernetes:external-secrets.io/v1:SecretStore"
CANARY_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api@sha256:" + "b" * 64


def test_api_bound_to_its_target_group(wl_records: dict[str, Record]) -> None:
    spec = by_name(wl_records["prod"], TGB, "api").inputs["spec"]
    assert spec["serviceRef"]["name"] == "api" and int(spec["serviceRef"]["port"]) == 8000
    assert spec["targetGroupARN"].endswith(":targetgroup/visionrag-prod-api/0123456789abcdef")
    assert spec["targetType"] == "ip"
    # No `networking`: the controller would look for the one cluster-tagged SG on each pod ENI and fail (the
    # EKS cluster SG carries that tag); the ALB -> node SG rules are plain Pulumi resources in infra/edge.py.
    assert "networking" not in spec


def test_canary_is_a_second_api_bound_to_the_canary_target_group(wl_record_of: Any) -> None:
    r = wl_record_of("prod", {"visionrag:workloads": {"canary": {"image": CANARY_IMAGE, "weight": 10}}})
    canary = by_name(r, DEPLOYMENT, "api-canary").inputs["spec"]
    pod = canary["template"]
    assert pod["spec"]["containers"][0]["image"] == CANARY_IMAGE
    assert pod["metadata"]["labels"]["visionrag.io/role"] == "api"  # same NetworkPolicies as the api
    assert pod["spec"]["serviceAccountName"] == "api"
    bindings = {name(t): t.inputs["spec"] for t in r.of_type(TGB)}
    assert set(bindings) == {"api", "api-canary", "frontend"}
    assert bindings["api-canary"]["targetGroupARN"].endswith("targetgroup/visionrag-prod-api-canary/0123456789abcdef")
    assert bindings["api-canary"]["serviceRef"]["name"] == "api-canary"


def test_secret_store_uses_irsa_service_account(wl_records: dict[str, Record]) -> None:
    (store,) = wl_records["prod"].of_type(SECRET_STORE)
    aws = store.inputs["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager" and aws["region"] == "us-east-1"
    assert aws["auth"] == {"jwt": {"serviceAccountRef": {"name": "secrets-reader"}}}


def test_external_secrets_come_from_project_secrets(wl_records: dict[str, Record]) -> None:
    secrets = {name(e): e.inputs["spec"] for e in wl_records["prod"].of_type(EXTERNAL_SECRET)}
    assert set(secrets) == {"qdrant-api-key", "llm-api-key", "redis-url", "api-auth", "frontend-auth"}
    for spec in secrets.values():
        assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": "aws-secrets-manager"}
        ref = spec["dataFrom"][0]["extract"] if "dataFrom" in spec else spec["data"][0]["remoteRef"]
        assert ref["key"].startswith("visionrag-prod/")
    auth = secrets["api-auth"]
    assert auth["dataFrom"] == [{"extract": {"key": "visionrag-prod/jwt"}}]
    assert set(auth["target"]["template"]["data"]) == {
        "auth_issuer_url",
        "auth_audience",
        "auth_jwks_url",
        "auth_algorithms",
        "auth_provider",
    }
    template = secrets["redis-url"]["target"]["template"]["data"]["value"]
    assert template.startswith("rediss://:{{ .secret | urlquery }}@master.visionrag-prod.")
    assert template.endswith(":6379/0")


def test_api_mounts_its_settings_secrets_as_files(wl_records: dict[str, Record]) -> None:
    pod = by_name(wl_records["prod"], DEPLOYMENT, "api").inputs["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    files = {
        (src["secret"]["name"], item["key"]): item["path"]
        for src in vol["projected"]["sources"]
        for item in src["secret"]["items"]
    }
    assert files[("qdrant-api-key", "value")] == "qdrant_api_key"
    assert files[("llm-api-key", "value")] == "openai_api_key"
    assert files[("redis-url", "value")] == "redis_url"
    assert files[("api-auth", "auth_jwks_url")] == "auth_jwks_url"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["SETTINGS_SECRETS_DIR"] == "/var/run/secrets/visionrag"
    assert not any(k.startswith("AUTH_") for k in env)


def test_frontend_is_bound_spread_and_budgeted(wl_record_of: Any) -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-frontend@sha256:" + "c" * 64
    small = {"cpuRequest": "100m", "cpuLimit": "500m", "memoryRequest": "128Mi", "memoryLimit": "256Mi"}
    r = wl_record_of(
        "prod",
        {"visionrag:workloads": {"frontend": {"image": image, "replicas": 2, "maxReplicas": 4, "resources": small}}},
    )
    binding = by_name(r, TGB, "frontend").inputs["spec"]
    assert binding["targetGroupARN"].endswith("targetgroup/visionrag-prod-frontend/0123456789abcdef")
    assert int(binding["serviceRef"]["port"]) == 3000
    assert by_name(r, "kubernetes:policy/v1:PodDisruptionBudget", "frontend")
    assert (
        int(by_name(r, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "frontend").inputs["spec"]["maxReplicas"])
        == 4
    )
    pod = by_name(r, DEPLOYMENT, "frontend").inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "frontend" and pod["automountServiceAccountToken"] is False
