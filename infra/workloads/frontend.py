"""The frontend (Next.js standalone image, frontend/Dockerfile): port 3000, readiness `GET /api/health`.

Behind CloudFront -> ALB (infra/cdn.py): NEXTAUTH_URL is the apex origin CloudFront serves. Server-side calls go
to the public API host (API_URL = https://api.<domain>, through the ALB and its WAF: the frontend's NetworkPolicy
already allows HTTPS out, and the API sees the same path as any client). The OIDC issuer and client id are the
stack's Cognito pool and app client (infra/identity.py); the two secrets (Auth.js session secret, client secret)
are files from the `frontend-auth` Kubernetes Secret (synced by an ExternalSecret from `<prefix>/frontend-auth`,
infra/frontend_secret.py), named by *_FILE variables: files, not env vars (checkov CKV_K8S_35, and env leaks into
crash dumps). No AWS access, so no IAM role. Writable paths: /tmp (always mounted) and the Next image cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, empty_dir, pod_spec, secrets_volume
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.spec import WorkloadSpec

HTTP_PORT = 3000
HEALTH_PATH = "/api/health"  # served by frontend/src/app/api/health (200 without a session; no redirect)
# The Kubernetes Secret the ExternalSecret writes (keys below); a name, not a value.
AUTH_SECRET = "frontend-auth"  # noqa: S105
SECRET_FILES = {"nextauth_secret": "nextauth_secret", "client_secret": "auth_client_secret"}
NEXT_CACHE_DIR = "/app/.next/cache"  # the Next.js image cache: the only path it writes besides /tmp


@dataclass(frozen=True, kw_only=True)
class FrontendSettings:
    """What the frontend must know about its stack (all non-secret)."""

    app_origin: str  # https://<apex>: NEXTAUTH_URL, the origin CloudFront serves
    api_url: str  # https://api.<domain>
    pages_image_origin: pulumi.Input[str]  # https://<pages bucket>.s3.<region>.amazonaws.com (presigned images)
    auth_issuer: pulumi.Input[str]  # the Cognito pool's issuer URL
    auth_client_id: pulumi.Input[str]  # the Cognito app client id
    environment: str  # SENTRY_ENVIRONMENT (the tier)
    sentry: bool = False  # mount the `sentry-dsn` Secret as SENTRY_DSN_FILE

    def __post_init__(self) -> None:
        for key in ("app_origin", "api_url"):
            value = getattr(self, key)
            if not value.startswith("https://") or value.rstrip("/") != value or value.count("/") != 2:
                raise ValueError(f"FrontendSettings.{key}: {value!r} must be an https:// origin without a path")


def frontend_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    spec: WorkloadSpec,
    settings: FrontendSettings,
    service_account: pulumi.Input[str],
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    files: dict[str, str | dict[str, str]] = {AUTH_SECRET: dict(SECRET_FILES)}
    env: dict[str, pulumi.Input[str]] = {
        "PORT": str(HTTP_PORT),
        "HOSTNAME": "0.0.0.0",  # noqa: S104 - the pod's own interfaces; NetworkPolicy and the ALB gate access
        "NEXT_TELEMETRY_DISABLED": "1",
        "NEXTAUTH_URL": settings.app_origin,
        "AUTH_URL": settings.app_origin,
        "AUTH_TRUST_HOST": "true",  # behind CloudFront + ALB: the Host is the apex, X-Forwarded-* set by them
        "API_URL": settings.api_url,
        "PAGES_IMAGE_ORIGIN": settings.pages_image_origin,
        "AUTH_ISSUER": settings.auth_issuer,
        "AUTH_CLIENT_ID": settings.auth_client_id,
        "AUTH_PROVIDER_ID": "cognito",  # the callback path infra/identity.py registers: /api/auth/callback/cognito
        "NEXTAUTH_SECRET_FILE": f"{SECRETS_DIR}/{SECRET_FILES['nextauth_secret']}",
        "AUTH_CLIENT_SECRET_FILE": f"{SECRETS_DIR}/{SECRET_FILES['client_secret']}",
        "SENTRY_ENVIRONMENT": settings.environment,
    }
    if settings.sentry:
        files["sentry-dsn"] = "sentry_dsn"
        env["SENTRY_DSN_FILE"] = f"{SECRETS_DIR}/sentry_dsn"
    container = ContainerSpec(
        name="frontend",
        image=spec.image,
        resources=spec.resources,
        ports={"http": HTTP_PORT},
        env=env,
        readiness=Probe(port=HTTP_PORT, path=HEALTH_PATH, period_s=10),
        liveness=Probe(port=HTTP_PORT, period_s=15, failure_threshold=4),
        mounts={"next-cache": NEXT_CACHE_DIR},
        read_only_mounts={"secrets": SECRETS_DIR},
    )
    return AppDeploymentArgs(
        provider=provider,
        namespace=namespace,
        workload="frontend",
        role="frontend",
        replicas=spec.replicas,
        max_replicas=spec.max_replicas,
        service_ports={"http": HTTP_PORT},
        pod=pod_spec(
            service_account=service_account,
            containers=[container],
            volumes=[empty_dir("next-cache", "1Gi"), secrets_volume("secrets", files)],
            topology_spread=spread("frontend"),
        ),
        depends_on=depends_on,
    )
