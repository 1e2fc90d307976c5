"""The optional frontend (Next.js image): port 3000, probed on `/`; no AWS access, no secrets."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import ContainerSpec, Probe, empty_dir, pod_spec
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.spec import WorkloadSpec

HTTP_PORT = 3000


def frontend_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    spec: WorkloadSpec,
    service_account: pulumi.Input[str],
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    container = ContainerSpec(
        name="frontend",
        image=spec.image,
        resources=spec.resources,
        ports={"http": HTTP_PORT},
        env={"PORT": str(HTTP_PORT), "HOSTNAME": "0.0.0.0", "NEXT_TELEMETRY_DISABLED": "1"},  # noqa: S104
        readiness=Probe(port=HTTP_PORT, path="/", period_s=10),
        liveness=Probe(port=HTTP_PORT, period_s=15, failure_threshold=4),
        mounts={"next-cache": "/app/.next/cache"},  # Next.js image cache: the only path it writes besides /tmp
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
            volumes=[empty_dir("next-cache", "1Gi")],
            topology_spread=spread("frontend"),
        ),
        depends_on=depends_on,
    )
