"""The indexing worker Deployment (jobs from Redis): metrics on 9091, probed over TCP on that port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, pod_spec, secrets_volume
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.spec import WorkloadSpec

METRICS_PORT = 9091
SECRETS = {"qdrant-api-key": "qdrant_api_key", "redis-url": "redis_url"}


def worker_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    spec: WorkloadSpec,
    command: Sequence[str],
    env: Mapping[str, pulumi.Input[str]],
    service_account: pulumi.Input[str],
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    container = ContainerSpec(
        name="worker",
        image=spec.image,
        resources=spec.resources,
        command=list(command),
        ports={"metrics": METRICS_PORT},
        env={
            **env,
            "WORKER_METRICS_PORT": str(METRICS_PORT),
            "SETTINGS_SECRETS_DIR": SECRETS_DIR,
        },
        readiness=Probe(port=METRICS_PORT, period_s=10),
        liveness=Probe(port=METRICS_PORT, period_s=15, failure_threshold=4),
        read_only_mounts={"secrets": SECRETS_DIR},
    )
    return AppDeploymentArgs(
        provider=provider,
        namespace=namespace,
        workload="worker",
        role="worker",
        replicas=spec.replicas,
        max_replicas=spec.max_replicas,
        pod=pod_spec(
            service_account=service_account,
            containers=[container],
            volumes=[secrets_volume("secrets", SECRETS)],
            topology_spread=spread("worker"),
            # A page in flight finishes (jobs are idempotent per page, so a kill is safe, just wasteful).
            termination_grace_s=120,
        ),
        depends_on=depends_on,
    )
