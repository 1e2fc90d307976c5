"""The api Deployment (gunicorn + uvicorn workers): port 8000, metrics 9090, readiness GET /health.

Also builds the canary: the same pod with the canary image under its own name (`api-canary`), sharing the
api's role label (so the same NetworkPolicies apply) and ServiceAccount (the same IAM permissions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, pod_spec, secrets_volume
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.spec import WorkloadSpec
from infra.workloads.uploads import api_ephemeral_storage_request, api_tmp_size

HTTP_PORT = 8000
METRICS_PORT = 9090
# Kubernetes Secret -> settings field (file name under SETTINGS_SECRETS_DIR).
AUTH_FIELDS = ("auth_issuer_url", "auth_audience", "auth_jwks_url", "auth_algorithms", "auth_provider")
SECRETS: dict[str, str | dict[str, str]] = {
    "qdrant-api-key": "qdrant_api_key",
    "redis-url": "redis_url",
    # The OIDC settings live in the `jwt` secret (one source, filled by the platform or the operator).
    "api-auth": {f: f for f in AUTH_FIELDS},
}


def api_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    workload: str,
    spec: WorkloadSpec,
    command: Sequence[str],
    env: Mapping[str, pulumi.Input[str]],
    service_account: pulumi.Input[str],
    autoscale: bool = True,
    # Optional Secrets (Secret name -> settings file): the Sentry DSN and the LLM key when the stack has them.
    extra_secrets: Mapping[str, str] | None = None,
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    container = ContainerSpec(
        name="api",
        image=spec.image,
        # Claims the disk its /tmp may fill (uploads spooled there), so it lands on a node that has it.
        resources=replace(spec.resources, ephemeral_storage_request=api_ephemeral_storage_request()),
        command=list(command),
        ports={"http": HTTP_PORT, "metrics": METRICS_PORT},
        env={
            **env,
            "SERVICE_NAME": "visionrag-api",
            "OTEL_SERVICE_NAME": "visionrag-api",
            "GUNICORN_BIND": f"0.0.0.0:{HTTP_PORT}",
            "METRICS_PORT": str(METRICS_PORT),
            "SETTINGS_SECRETS_DIR": SECRETS_DIR,
        },
        # /health answers 503 while a dependency is down: the pod leaves the target group, not the node.
        readiness=Probe(port=HTTP_PORT, path="/health", period_s=5, failure_threshold=3),
        liveness=Probe(port=HTTP_PORT, period_s=10, failure_threshold=6),
        read_only_mounts={"secrets": SECRETS_DIR},
    )
    return AppDeploymentArgs(
        provider=provider,
        namespace=namespace,
        workload=workload,
        role="api",
        replicas=spec.replicas,
        max_replicas=spec.max_replicas if autoscale else None,
        service_ports={"http": HTTP_PORT},
        pod=pod_spec(
            service_account=service_account,
            containers=[container],
            volumes=[secrets_volume("secrets", {**SECRETS, **(extra_secrets or {})})],
            topology_spread=spread(workload),
            termination_grace_s=45,  # gunicorn graceful timeout (30 s) plus the ALB deregistration delay
            # Every worker's every upload slot holding a full upload (infra/workloads/uploads.py), not the 256Mi
            # other pods get: past its sizeLimit the kubelet evicts the pod with all its in-flight requests.
            tmp_size=api_tmp_size(),
        ),
        depends_on=depends_on,
    )
