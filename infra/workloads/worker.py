"""The indexing worker Deployment (jobs from Redis): metrics on 9091, probed over TCP on that port.

Outside dev the worker refuses to start until the Qdrant collection exists at the code's schema version; an init
container runs the app's idempotent `python -m app.ops.collection migrate` first, with the worker's own settings,
so a fresh stack or a schema bump never leaves the workers crash-looping (concurrent pods: one creates, the
others see it and exit 0, or retry on the creation race).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, Resources, pod_spec, secrets_volume
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.spec import WorkloadSpec

METRICS_PORT = 9091
MIGRATE_COMMAND = ("python", "-m", "app.ops.collection", "migrate")
MIGRATE_RESOURCES = Resources(cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="512Mi")
SECRETS = {"qdrant-api-key": "qdrant_api_key", "redis-url": "redis_url"}


def worker_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    spec: WorkloadSpec,
    command: Sequence[str],
    env: Mapping[str, pulumi.Input[str]],
    service_account: pulumi.Input[str],
    # Optional Secrets (Secret name -> settings file), e.g. the Sentry DSN when the stack has one.
    extra_secrets: Mapping[str, str] | None = None,
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    settings_env = {**env, "SETTINGS_SECRETS_DIR": SECRETS_DIR}
    migrate = ContainerSpec(
        name="collection-migrate",
        image=spec.image,
        resources=MIGRATE_RESOURCES,
        command=list(MIGRATE_COMMAND),
        env=settings_env,
        read_only_mounts={"secrets": SECRETS_DIR},
        run_to_completion=True,
    )
    container = ContainerSpec(
        name="worker",
        image=spec.image,
        resources=spec.resources,
        command=list(command),
        ports={"metrics": METRICS_PORT},
        env={**settings_env, "WORKER_METRICS_PORT": str(METRICS_PORT)},
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
            init_containers=[migrate],
            volumes=[secrets_volume("secrets", {**SECRETS, **(extra_secrets or {})})],
            topology_spread=spread("worker"),
            # A page in flight finishes (jobs are idempotent per page, so a kill is safe, just wasteful).
            termination_grace_s=120,
        ),
        depends_on=depends_on,
    )
