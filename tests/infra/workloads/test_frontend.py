"""The frontend Deployment (infra/workloads/frontend.py) and its secrets, on every stack."""

from __future__ import annotations

from typing import Any

import pytest

from infra.workloads.container import SECRETS_DIR
from infra.workloads.frontend import AUTH_SECRET, HEALTH_PATH, HTTP_PORT, SECRET_FILES, FrontendSettings
from stacks.config import ConfigError
from stacks.engine.offline import Record
from tests.infra.workloads.graph import by_name
from tests.infra.workloads.platform_stub import record_workloads

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
STACKS = ("dev", "staging", "prod")


def _pod(record: Record) -> dict[str, Any]:
    spec: dict[str, Any] = by_name(record, DEPLOYMENT, "frontend").inputs["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("stack", STACKS)
def test_frontend_probes_health_route_and_runs_read_only(wl_records: dict[str, Record], stack: str) -> None:
    (container,) = _pod(wl_records[stack])["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": HTTP_PORT}
    assert container["livenessProbe"]["tcpSocket"] == {"port": HTTP_PORT}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/app/.next/cache"}


@pytest.mark.parametrize("stack", STACKS)
def test_frontend_env_points_at_the_stack(wl_records: dict[str, Record], stack: str) -> None:
    record = wl_records[stack]
    ec = record.config.edge
    (container,) = _pod(record)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NEXTAUTH_URL"] == env["AUTH_URL"] == f"https://{ec.domain}"
    assert env["API_URL"] == f"https://{ec.api_subdomain}.{ec.domain}"
    assert (
        env["PAGES_IMAGE_ORIGIN"]
        == f"https://{record.config.physical_name('pages')}.s3.{record.config.region}.amazonaws.com"
    )
    assert env["AUTH_ISSUER"].startswith("https://cognito-idp.") and env["AUTH_CLIENT_ID"]
    assert env["AUTH_PROVIDER_ID"] == "cognito"
    # Secrets are files, never env values or secretKeyRefs (checkov CKV_K8S_35).
    assert env["NEXTAUTH_SECRET_FILE"] == f"{SECRETS_DIR}/{SECRET_FILES['nextauth_secret']}"
    assert env["AUTH_CLIENT_SECRET_FILE"] == f"{SECRETS_DIR}/{SECRET_FILES['client_secret']}"
    assert all("valueFrom" not in e for e in container["env"])
    assert not {"NEXTAUTH_SECRET", "AUTH_CLIENT_SECRET", "AUTH_SECRET"} & set(env)


@pytest.mark.parametrize("stack", STACKS)
def test_frontend_secret_files_come_from_the_frontend_auth_external_secret(
    wl_records: dict[str, Record], stack: str
) -> None:
    record = wl_records[stack]
    (volume,) = [v for v in _pod(record)["volumes"] if v["name"] == "secrets"]
    (source,) = volume["projected"]["sources"]
    assert source["secret"]["name"] == AUTH_SECRET
    assert {i["key"]: i["path"] for i in source["secret"]["items"]} == SECRET_FILES
    external = by_name(record, EXTERNAL_SECRET, AUTH_SECRET).inputs["spec"]
    assert external["dataFrom"] == [{"extract": {"key": f"{record.config.physical_name()}/frontend-auth"}}]
    assert set(external["target"]["template"]["data"]) == set(SECRET_FILES)


def test_frontend_with_an_external_idp_is_a_config_error() -> None:
    external = {
        "issuerUrl": "https://idp.example.com/",
        "audience": "visionrag",
        "jwksUrl": "https://idp.example.com/jwks",
    }
    with pytest.raises(ConfigError) as e:
        record_workloads("dev", {"visionrag:workloads": {"auth": external}})
    assert "visionrag:workloads" in str(e.value) and "frontend" in str(e.value) and "Cognito" in str(e.value)


@pytest.mark.parametrize("bad", ["http://app.example.com", "https://app.example.com/", "https://x.example.com/p"])
def test_frontend_settings_refuse_non_https_origins(bad: str) -> None:
    with pytest.raises(ValueError, match="app_origin"):
        FrontendSettings(
            app_origin=bad,
            api_url="https://api.example.com",
            pages_image_origin="https://b.s3.us-east-1.amazonaws.com",
            auth_issuer="https://issuer",
            auth_client_id="c",
            environment="dev",
        )
