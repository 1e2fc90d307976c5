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
        alb_cidrs=["0.0.0.0/0"],
        control_plane_cidrs=["10.40.216.0/23"],
        scraper_cidrs=["10.40.216.0/23"],
        pod_cidrs=["10.40.0.0/18"],
        cache_cidrs=["10.40.0.0/18"],
    )
    with pytest.raises(ValueError, match="alb_cidrs"):
        NetworkPolicies("np", args)


@pytest.mark.parametrize("field", ["alb_cidrs", "control_plane_cidrs", "scraper_cidrs"])
@pytest.mark.parametrize("cidr", ["10.40.0.0/16", "10.40.1.0/24"])  # the VPC, or a piece of a pod subnet
def test_network_policies_refuse_sources_that_hold_pods(field: str, cidr: str) -> None:
    good = {
        "alb_cidrs": ["10.40.192.0/21"],
        "control_plane_cidrs": ["10.40.216.0/23"],
        "scraper_cidrs": ["10.40.216.0/23"],
    }
    args = NetworkPoliciesArgs(
        provider=None,  # type: ignore[arg-type]
        app_namespace="visionrag",
        system_namespace="visionrag-system",
        **{**good, field: [cidr]},
        pod_cidrs=["10.40.0.0/18"],
        cache_cidrs=["10.40.0.0/18"],
    )
    with pytest.raises(ValueError, match=rf"{field}: .*overlap the pod subnets"):
        NetworkPolicies("np", args)


def _args(**changes: object) -> object:
    import dataclasses
    import json

    from infra.workloads.args import WorkloadsArgs
    from stacks.config import load_stack_config
    from stacks.engine.offline import read_stack_file
    from stacks.workloads_args import workloads_args
    from tests.infra.workloads import platform_stub as conftest

    values = {
        k.split(":", 1)[1]: v if isinstance(v, str) else json.dumps(v) for k, v in read_stack_file("prod").items()
    }
    cfg = load_stack_config("prod", {k: v for k, v in values.items() if k != "llmApiKey"})
    original = conftest.k8s.Provider
    conftest.k8s.Provider = lambda *a, **k: None  # type: ignore[assignment,misc]
    try:
        platform = conftest.platform(cfg)
    finally:
        conftest.k8s.Provider = original  # type: ignore[misc]
    args: WorkloadsArgs = workloads_args(cfg, **platform)
    return dataclasses.replace(args, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"bucket_arns": {"pages": "arn:aws:s3:::p"}},
            r"bucket_names/bucket_arns: missing \['snapshots', 'models', 'audit'\]",
        ),
        ({"secret_names": {"qdrant-api-key": "x"}}, r"secret_names: missing \['cache-auth', 'jwt'\]"),
        ({"target_group_arns": {"frontend": "arn"}}, r"target_group_arns: missing \['api'\]"),
        ({"secret_arns": []}, "secret_arns"),
        ({"qdrant_replication_factor": 5}, "qdrant_replication_factor: 5"),
    ],
)
def test_workloads_args_are_validated(changes: dict[str, object], message: str) -> None:
    from infra.workloads.args import validate

    with pytest.raises(ValueError, match=message):
        validate(_args(**changes))  # type: ignore[arg-type]
