"""A broken stack config fails before anything is registered, with a message naming the key, value and remedy.

Each case edits the committed Pulumi.<stack>.yaml through `overrides` (the same deep merge a real edit would be),
and is checked three ways: run_stack raises ConfigError naming the key; the engine never started (no resource,
not even the stack); `python -m stacks preview` exits 2 and prints the message.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from stacks import cli
from stacks.config import ConfigError
from stacks.config.errors import ConfigFileError
from stacks.engine import offline
from stacks.engine.offline import run_stack

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
    assert "llmApiKey" not in keys  # optional: not declared, so never "missing"


# ---- issue 15: the CLI's rough edges ---------------------------------------------------------------------------


def test_yaml_syntax_error_is_a_config_error_naming_file_and_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    good = (offline.ROOT / "Pulumi.dev.yaml").read_text().splitlines()
    broken = [*good[:3], "  visionrag:region: [us-east-1", *good[3:]]  # an unclosed flow sequence on line 4
    (tmp_path / "Pulumi.dev.yaml").write_text("\n".join(broken) + "\n")
    with pytest.raises(ConfigFileError) as info:
        offline.read_stack_file("dev", root=tmp_path)
    assert info.value.file == "Pulumi.dev.yaml"
    assert info.value.line is not None and info.value.line >= 4
    # Through the CLI: exit 2, one short message, no traceback.
    monkeypatch.setattr(cli, "run_stack", lambda stack: offline.read_stack_file(stack, root=tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["preview", "dev"], out=out, err=err) == 2
    message = err.getvalue()
    assert f"Pulumi.dev.yaml, line {info.value.line}, column" in message and "not valid YAML" in message
    assert "Traceback" not in message and len(message.splitlines()) <= 3


@pytest.mark.parametrize(
    ("overrides", "key", "meant"),
    [
        ({"visionrag:network": {"azCont": 2}}, "visionrag:network.azCont", "azCount"),
        ({"visionrag:cluster": {"systemNodes": {"instanceType": ["m6i.large"]}}}, "systemNodes.instanceType",
         "instanceTypes"),
        ({"visionrag:workloads": {"api": {"replica": 2}}}, "visionrag:workloads.api.replica", "replicas"),
    ],
)  # fmt: skip
def test_unknown_key_says_what_was_meant(overrides: dict[str, Any], key: str, meant: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("dev", overrides=overrides)
    line = next(line for line in str(info.value).splitlines() if key in line)
    assert f"did you mean {meant!r}?" in line and "allowed: " in line


def test_unknown_key_with_nothing_close_lists_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("dev", overrides={"visionrag:cache": {"zzz": 1}})
    line = next(line for line in str(info.value).splitlines() if "cache.zzz" in line)
    assert "did you mean" not in line and "allowed: engine, engineVersion, multiAz" in line


def test_system_nodes_of_two_architectures_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack(
            "dev", overrides={"visionrag:cluster": {"systemNodes": {"instanceTypes": ["t3a.medium", "t4g.medium"]}}}
        )
    assert "visionrag:cluster.systemNodes.instanceTypes" in str(info.value)
    assert "mix architectures ['arm64', 'x86_64']" in str(info.value)


def test_cache_engine_version_must_be_one_elasticache_runs() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("dev", overrides={"visionrag:cache": {"engineVersion": "8.3"}})
    assert "visionrag:cache.engineVersion: '8.3' is not an ElastiCache valkey version; allowed: 7.2, 8.0" in str(
        info.value
    )
