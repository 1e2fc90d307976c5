"""Component Args are validated before any child exists (ValueError naming the field and value)."""

from __future__ import annotations

import pytest

from infra.workloads.addons import gpu_toleration
from infra.workloads.container import ContainerSpec, Probe, Resources, pod_spec
from infra.workloads.network_policies import NetworkPolicies, NetworkPoliciesArgs
from infra.workloads.spec import WorkloadSpec

RES = Resources(cpu_request="100m", cpu_limit="1", memory_request="128Mi", memory_limit="256Mi")
PROBE = Probe(port=8000, path="/health")


def test_container_refuses_unpinned_images() -> None:
    for image in ("ghcr.io/example/api:latest", "ghcr.io/example/api", ""):
        with pytest.raises(ValueError, match=r"ContainerSpec\.image"):
            ContainerSpec(name="api", image=image, resources=RES, liveness=PROBE, readiness=PROBE)


def test_container_refuses_missing_probes_and_limits() -> None:
    with pytest.raises(ValueError, match="liveness and readiness"):
        ContainerSpec(name="api", image="ghcr.io/example/api:1.0", resources=RES, liveness=PROBE)
    with pytest.raises(ValueError, match=r"Resources\.memory_limit"):
        Resources(cpu_request="1", cpu_limit="1", memory_request="1Gi", memory_limit="")


def test_init_containers_must_run_to_completion() -> None:
    c = ContainerSpec(name="api", image="ghcr.io/example/api:1.0", resources=RES, liveness=PROBE, readiness=PROBE)
    with pytest.raises(ValueError, match="run_to_completion"):
        pod_spec(service_account="api", containers=[c], init_containers=[c])


def test_gpu_resources_request_equals_limit() -> None:
    r = Resources(cpu_request="1", cpu_limit="2", memory_request="1Gi", memory_limit="2Gi", gpus=1).to_args()
    assert r.requests["nvidia.com/gpu"] == r.limits["nvidia.com/gpu"] == "1"  # type: ignore[index]


def test_toleration_refuses_unknown_effect() -> None:
    with pytest.raises(ValueError, match="effect 'NoSchedule'"):
        gpu_toleration(("nvidia.com/gpu", "true", "NoSchedule"))
    assert gpu_toleration(("nvidia.com/gpu", "true", "NO_SCHEDULE"))["effect"] == "NoSchedule"


def test_workload_spec_refuses_inverted_replicas() -> None:
    with pytest.raises(ValueError, match="max_replicas"):
        WorkloadSpec(image="x:1", replicas=3, max_replicas=2, resources=RES)


def test_network_policies_refuse_open_sources() -> None:
    args = NetworkPoliciesArgs(
        provider=None,  # type: ignore[arg-type]
        app_namespace="visionrag",
        system_namespace="visionrag-system",
        ingress_cidrs=["0.0.0.0/0"],
        cache_cidrs=["10.0.0.0/16"],
    )
    with pytest.raises(ValueError, match="ingress_cidrs"):
        NetworkPolicies("np", args)
