"""A broken stack config fails before anything is registered, with a message naming the key, value and remedy.

Each case edits the committed Pulumi.<stack>.yaml through `overrides` (the same deep merge a real edit would be),
and is checked three ways: run_stack raises ConfigError naming the key; the engine never started (no resource,
not even the stack); `python -m stacks preview` exits 2 and prints the message.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from stacks import cli, offline
from stacks.config import ConfigError
from stacks.offline import run_stack

DIGEST = "sha256:" + "a" * 64
CASES: list[tuple[str, str, dict[str, Any], str, list[str]]] = [
    # (id, stack, overrides, key named in the message, other fragments the message must contain)
    (
        "unknown-key",
        "dev",
        {"visionrag:network": {"vpcCidrr": "10.0.0.0/16"}},
        "visionrag:network.vpcCidrr",
        ["unknown key", "10.0.0.0/16"],
    ),
    (
        "unknown-top-level-key",
        "staging",
        {"visionrag:clustr": {"kubernetesVersion": "1.33"}},
        "visionrag:clustr",
        ["unknown key"],
    ),
    (
        "bad-enum",
        "dev",
        {"visionrag:network": {"natGateways": "perAZ"}},
        "visionrag:network.natGateways",
        ["'single'", "'perAz'", "'perAZ'"],
    ),
    (
        "non-gpu-instance-type",
        "prod",
        {"visionrag:cluster": {"gpuNodes": {"instanceTypes": ["m6i.large"]}}},
        "visionrag:cluster.gpuNodes.instanceTypes",
        ["'m6i.large'", "g5"],
    ),
    (
        "min-greater-than-max",
        "staging",
        {"visionrag:cluster": {"gpuNodes": {"minSize": 3, "maxSize": 2}}},
        "visionrag:cluster.gpuNodes",
        ["minSize (3)", "maxSize (2)"],
    ),
    (
        "wildcard-cors-in-prod",
        "prod",
        {"visionrag:workloads": {"allowedOrigins": ["*"]}},
        "visionrag:workloads.allowedOrigins",
        ["'*'", "prod"],
    ),
    (
        "tag-not-digest-in-prod",
        "prod",
        {"visionrag:workloads": {"api": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api:1.2.3"}}},
        "visionrag:workloads.api.image",
        ["not pinned by digest", "visionrag-api:1.2.3"],
    ),
    (
        "latest-tag-in-dev",
        "dev",
        {"visionrag:workloads": {"worker": {"image": "ghcr.io/acme/worker:latest"}}},
        "visionrag:workloads.worker.image",
        [":latest"],
    ),
    (
        "public-endpoint-open-to-internet",
        "dev",
        {"visionrag:cluster": {"publicAccessCidrs": ["0.0.0.0/0"]}},
        "visionrag:cluster.publicAccessCidrs",
        ["0.0.0.0/0", "internet"],
    ),
    (
        "public-endpoint-in-staging",
        "staging",
        {"visionrag:cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}},
        "visionrag:cluster.endpointPublicAccess",
        ["staging"],
    ),
    ("unknown-tier", "dev", {"visionrag:tier": "qa"}, "visionrag:tier", ["'qa'", "dev, staging, prod"]),
    (
        "prod-without-replication",
        "prod",
        {"visionrag:storage": {"replication": False}},
        "visionrag:storage.replication",
        ["prod"],
    ),
    ("bad-region", "dev", {"visionrag:region": "us-east"}, "visionrag:region", ["'us-east'"]),
]


@pytest.fixture
def engine_never_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []

    def spy(stack: str, *args: Any, **kwargs: Any) -> Any:
        started.append(stack)
        raise AssertionError("the engine started although the config is invalid")

    monkeypatch.setattr(offline, "_run", spy)
    return started


@pytest.mark.parametrize(("stack", "overrides", "key", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_names_key_and_registers_nothing(
    engine_never_runs: list[str], stack: str, overrides: dict[str, Any], key: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack(stack, overrides=overrides)
    message = str(exc.value)
    assert f"invalid config for stack '{stack}'" in message
    assert key in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    assert engine_never_runs == []


@pytest.mark.parametrize(
    ("stack", "overrides", "key"), [(c[1], c[2], c[3]) for c in CASES[:4]], ids=[c[0] for c in CASES[:4]]
)
def test_cli_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, engine_never_runs: list[str], stack: str, overrides: dict[str, Any], key: str
) -> None:
    monkeypatch.setattr(cli, "run_stack", lambda s: run_stack(s, overrides=overrides))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["preview", stack, "--format", "json"], out=out, err=err) == 2
    assert out.getvalue() == ""
    assert key in err.getvalue()
    assert engine_never_runs == []


def test_several_problems_are_reported_together(engine_never_runs: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack(
            "dev",
            overrides={"visionrag:network": {"azCount": 7}, "visionrag:cache": {"nodeType": "r7g.large"}},
        )
    keys = [k for k, _ in exc.value.problems]
    assert "network.azCount" in keys
    assert "cache.nodeType" in keys


def test_missing_required_key_is_named(tmp_path, engine_never_runs: list[str]) -> None:
    # As the real CLI does for a project key declared without a default.
    (tmp_path / "Pulumi.yaml").write_text((offline.ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  visionrag:region: us-east-1\n")
    with pytest.raises(ConfigError) as exc:
        offline.apply_project_config("dev", offline.read_stack_file("dev", tmp_path), tmp_path)
    keys = {k for k, _ in exc.value.problems}
    assert {"edge", "workloads"} <= keys
    assert "llmApiKey" not in keys  # secrets are supplied by the caller offline
