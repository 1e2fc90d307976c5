"""Bad workloads config is refused before any resource exists, with the key, the value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError
from tests.infra.workloads.platform_stub import record_workloads

TAGGED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api:1.4.2"
SMALL = {"cpuRequest": "100m", "cpuLimit": "500m", "memoryRequest": "128Mi", "memoryLimit": "256Mi"}


def _refused(stack: str, workloads: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as e:
        record_workloads(stack, {"visionrag:workloads": workloads})
    return str(e.value)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_tagged_image_is_refused_outside_dev(stack: str) -> None:
    msg = _refused(stack, {"api": {"image": TAGGED}})
    assert "visionrag:workloads.api.image" in msg
    assert TAGGED in msg and "sha256" in msg


def test_tagged_image_is_fine_in_dev() -> None:
    r = record_workloads("dev", {"visionrag:workloads": {"api": {"image": TAGGED}}})
    assert r.config.workloads.api.image == TAGGED


def test_latest_is_refused_everywhere() -> None:
    msg = _refused("dev", {"worker": {"image": "ghcr.io/example/worker:latest"}})
    assert "workloads.worker.image" in msg and ":latest" in msg


def test_canary_and_model_sync_images_follow_the_same_rule() -> None:
    assert "canary.image" in _refused("prod", {"canary": {"image": TAGGED, "weight": 5}})
    assert "modelSyncImage" in _refused("prod", {"modelSyncImage": "public.ecr.aws/aws-cli/aws-cli:2.27.0"})


def test_missing_resource_limit_is_refused() -> None:
    # A quantity removed from a workload's tier defaults: the key is named.
    msg = _refused("dev", {"frontend": {"resources": {"cpuLimit": None}}})
    assert "visionrag:workloads.frontend.resources.cpuLimit" in msg
    # A limit removed from an existing one.
    msg = _refused("dev", {"api": {"resources": {"memoryLimit": None}}})
    assert "visionrag:workloads.api.resources.memoryLimit" in msg


@pytest.mark.parametrize(
    ("resources", "key", "fragment"),
    [
        ({"cpuLimit": "two"}, "api.resources.cpuLimit", "'two' is not a CPU quantity"),
        ({"memoryLimit": "2GB"}, "api.resources.memoryLimit", "units Ki, Mi, Gi, Ti"),
        ({"cpuRequest": "4"}, "api.resources.cpuRequest", "exceeds cpuLimit"),
        ({"memoryRequest": "3Gi"}, "api.resources.memoryRequest", "exceeds memoryLimit"),
    ],
)
def test_bad_quantities_are_refused(resources: dict[str, str], key: str, fragment: str) -> None:
    msg = _refused("dev", {"api": {"resources": resources}})
    assert f"visionrag:workloads.{key}" in msg and fragment in msg


def test_unknown_workload_is_refused_naming_the_known_ones() -> None:
    msg = _refused("prod", {"redis": {"image": "redis:7", "replicas": 1, "resources": SMALL}})
    assert "visionrag:workloads.redis" in msg
    assert "api, worker, embedder, qdrant, frontend, snapshots" in msg


def test_autoscaling_a_stateful_workload_is_refused() -> None:
    msg = _refused("prod", {"qdrant": {"maxReplicas": 6}})
    assert "workloads.qdrant.maxReplicas" in msg and "only api, worker, embedder, frontend" in msg


def test_replication_factor_above_replicas_is_refused() -> None:
    msg = _refused("prod", {"qdrant": {"replicas": 1}})
    assert "qdrantReplicationFactor (2) exceeds qdrant.replicas (1)" in msg
