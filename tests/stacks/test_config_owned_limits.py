"""Every enumerated or bounded config value is checked at config time against the limit its component owns.

A value the component would refuse must fail as a ConfigError naming the key before the engine starts (before
keys, network and storage are registered), and config must accept exactly what the component accepts: the
allowed set is imported from the component (infra/...), never written a second time.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from infra.bucket import OBJECT_LOCK_MODES
from infra.cache import ENGINE_VERSIONS as VERSIONS
from infra.cache import ENGINES, SNAPSHOT_RETENTION_DAYS
from infra.cluster import SUPPORTED_VERSIONS
from infra.naming import LOG_RETENTION_DAYS
from infra.network import NatLayout
from infra.node_group import GPU_AMI_TYPES
from stacks.config import ConfigError
from stacks.config.stack import StackConfig
from stacks.engine import offline
from stacks.engine.offline import run_stack

# (key, overrides, fragments the message must contain besides the key)
BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    ("cluster.logRetentionDays", {"visionrag:cluster": {"logRetentionDays": 100}}, ["100", "90, 120"]),
    ("edge.wafLogRetentionDays", {"visionrag:edge": {"wafLogRetentionDays": 100}}, ["100", "90, 120"]),
    ("cache.slowLogRetentionDays", {"visionrag:cache": {"slowLogRetentionDays": 2}}, ["2", "1, 3"]),
    ("network.flowLogRetentionDays", {"visionrag:network": {"flowLogRetentionDays": 0}}, ["0", "1, 3"]),
    ("cache.snapshotRetentionDays", {"visionrag:cache": {"snapshotRetentionDays": 36}}, ["35"]),
    ("cluster.kubernetesVersion", {"visionrag:cluster": {"kubernetesVersion": "1.30"}}, ["'1.30'", "1.31"]),
    (
        "cluster.gpuNodes.amiType",
        {"visionrag:cluster": {"gpuNodes": {"amiType": "AL2_x86_64_GPU"}}},
        ["AL2023_x86_64_NVIDIA"],
    ),
    (
        "cluster.gpuNodes.instanceTypes",
        {"visionrag:cluster": {"gpuNodes": {"instanceTypes": ["g4dn.xlarge"]}}},
        ["'g4dn.xlarge'", "g6e"],
    ),
    ("storage.auditObjectLock", {"visionrag:storage": {"auditObjectLock": "legal-hold"}}, ["'compliance'"]),
    ("cache.engine", {"visionrag:cache": {"engine": "memcached"}}, ["'valkey'", "'redis'"]),
    ("network.natGateways", {"visionrag:network": {"natGateways": "none"}}, ["'perAz'"]),
    ("edge.wafRateLimit", {"visionrag:edge": {"wafRateLimit": 99}}, ["100"]),
    ("edge.accessLogPrefix", {"visionrag:edge": {"accessLogPrefix": "alb/"}}, ["'alb/'"]),
    ("edge.apiSubdomain", {"visionrag:edge": {"apiSubdomain": "-api"}}, ["'-api'"]),
    ("edge.domain", {"visionrag:edge": {"domain": "Example.COM"}}, ["'Example.COM'"]),
    ("observability.alarmEmails", {"visionrag:observability": {"alarmEmails": ["ops@example"]}}, ["'ops@example'"]),
    ("replicaRegion", {"visionrag:replicaRegion": "eu-west"}, ["'eu-west'"]),
    ("identity.mfa", {"visionrag:identity": {"mfa": "off"}}, ["optional, on"]),
    ("identity.threatProtection", {"visionrag:identity": {"threatProtection": "block"}}, ["audit"]),
    ("secrets.recoveryWindowDays", {"visionrag:secrets": {"recoveryWindowDays": 3}}, ["7-30"]),
    ("cache.numCacheClusters", {"visionrag:cache": {"numCacheClusters": 7}}, ["6"]),
    ("cluster.systemNodes.diskSizeGib", {"visionrag:cluster": {"systemNodes": {"diskSizeGib": 19}}}, ["20"]),
    (
        "registry.keepReleases",
        {"visionrag:registry": {"keepReleases": {"dev": 10, "staging": 10, "prod": 301}}},
        ["between 1 and 300"],
    ),
    ("registry.keepBuilds", {"visionrag:registry": {"keepBuilds": 301}}, ["300"]),
    ("delivery.runnerTimeoutMinutes", {"visionrag:delivery": {"runnerTimeoutMinutes": 2161}}, ["2160"]),
    ("delivery.runnerComputeType", {"visionrag:delivery": {"runnerComputeType": "BUILD_GENERAL2"}}, ["SMALL"]),
]


@pytest.fixture
def engine_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def spy(stack: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the engine started for {stack!r} although the config is invalid")

    monkeypatch.setattr(offline, "_run", spy)


@pytest.mark.parametrize(("key", "overrides", "fragments"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.usefixtures("engine_never_runs")
def test_bad_value_is_a_config_error_before_any_resource(
    key: str, overrides: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("staging", overrides=overrides)
    keys = [k for k, _ in exc.value.problems]
    assert key in keys, exc.value
    message = dict(exc.value.problems)[key]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


@pytest.fixture(scope="module")
def staging() -> StackConfig:
    captured: list[StackConfig] = []
    run_stack("staging", program=captured.append)
    return captured[0]


def _accepts(model: BaseModel, field: str, value: Any) -> bool:
    try:
        type(model).model_validate({**model.model_dump(by_alias=True), field: value})
    except ValidationError:
        return False
    return True


CANDIDATE_DAYS = sorted({d + delta for d in LOG_RETENTION_DAYS for delta in (-1, 0, 1)} | {-1, 0, 4000})


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("cluster", "logRetentionDays"),
        ("edge", "wafLogRetentionDays"),
        ("cache", "slowLogRetentionDays"),
        ("network", "flowLogRetentionDays"),
    ],
)
def test_log_retention_keys_accept_exactly_cloudwatch_values(staging: StackConfig, section: str, field: str) -> None:
    model = getattr(staging, section)
    accepted = {d for d in CANDIDATE_DAYS if _accepts(model, field, d)}
    assert accepted == LOG_RETENTION_DAYS


def test_cache_snapshot_retention_is_the_components_range(staging: StackConfig) -> None:
    accepted = {d for d in range(-2, 40) if _accepts(staging.cache, "snapshotRetentionDays", d)}
    assert accepted == set(SNAPSHOT_RETENTION_DAYS)


@pytest.mark.parametrize(
    ("section", "field", "owned"),
    [
        ("cluster", "kubernetesVersion", SUPPORTED_VERSIONS),
        ("cache", "engine", ENGINES),
        ("storage", "auditObjectLock", OBJECT_LOCK_MODES),
        ("network", "natGateways", get_args(NatLayout)),
    ],
)
def test_enumerated_keys_accept_every_value_the_component_owns(
    staging: StackConfig, section: str, field: str, owned: tuple[str, ...]
) -> None:
    model = getattr(staging, section)
    if field == "engine":  # each engine has its own versions: validate the pair the component checks
        for e in owned:
            type(model).model_validate(
                {**model.model_dump(by_alias=True), "engine": e, "engineVersion": VERSIONS[e][0]}
            )
        return
    if field == "kubernetesVersion":  # kube-proxy must follow the control plane's minor version
        for v in owned:
            addons = {**model.addons.model_dump(by_alias=True), "kubeProxy": f"v{v}.0-eksbuild.1"}
            type(model).model_validate({**model.model_dump(by_alias=True), "kubernetesVersion": v, "addons": addons})
        return
    for v in owned:
        assert _accepts(model, field, v), v


def test_gpu_ami_types_are_the_node_group_components(staging: StackConfig) -> None:
    gpu = staging.cluster.gpu_nodes
    assert {t for t in GPU_AMI_TYPES if _accepts(gpu, "amiType", t)} == set(GPU_AMI_TYPES)
    assert not _accepts(gpu, "amiType", "AL2023_x86_64_STANDARD")
