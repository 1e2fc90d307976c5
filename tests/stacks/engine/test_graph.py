"""The recorded resource graph of every stack, judged generically so it holds as components are added.

Each stack runs once per session (tests/conftest.py `records`). What must hold for any program we ship: URNs are
unique, every parent and dependency exists in the same graph, children are named after their component, custom
resources belong to a component, secret values never reach a recorded input/output or the plan JSON, and what the
real CLI runs (stacks.program.main, reading Pulumi config) registers exactly what the offline engine records.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pulumi
import pytest

from stacks.config import StackConfig, config_from_pulumi
from stacks.engine.offline import SECRET, Record, run_stack
from stacks.engine.plan import build_plan

STACKS = ("dev", "staging", "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_registers_resources_and_exports(records: dict[str, Record], stack: str) -> None:
    r = records[stack]
    assert r.stack == stack
    assert r.config.tier == stack
    assert any(res.custom for res in r.resources), "the program registered no resources"
    assert r.outputs["tier"] == stack
    assert r.outputs["region"] == r.config.region


@pytest.mark.parametrize("stack", STACKS)
def test_urns_unique_and_well_formed(records: dict[str, Record], stack: str) -> None:
    urns = [res.urn for res in records[stack].resources]
    dupes = [u for u, n in Counter(urns).items() if n > 1]
    assert not dupes
    for res in records[stack].resources:
        assert res.urn.startswith(f"urn:pulumi:{stack}::visionrag::"), res.urn
        assert res.urn.endswith(f"::{res.name}")
        assert res.urn.split("::")[2].split("$")[-1] == res.type


@pytest.mark.parametrize("stack", STACKS)
def test_parents_and_dependencies_exist(records: dict[str, Record], stack: str) -> None:
    r = records[stack]
    urns = {res.urn for res in r.resources}
    stack_urn = f"urn:pulumi:{stack}::visionrag::pulumi:pulumi:Stack::visionrag-{stack}"
    for res in r.resources:
        assert res.parent in urns | {stack_urn}, f"{res.urn}: parent {res.parent} not registered"
        missing = [d for d in res.dependencies if d not in urns]
        assert not missing, f"{res.urn} depends on unregistered {missing}"
        if res.parent != stack_urn:
            parent = r.by_urn(res.parent)  # type: ignore[arg-type]
            assert not parent.custom, f"{res.urn}: parent {parent.urn} is a custom resource, not a component"


@pytest.mark.parametrize("stack", STACKS)
def test_children_named_after_their_component(records: dict[str, Record], stack: str) -> None:
    r = records[stack]
    urns = {res.urn: res for res in r.resources}
    for res in r.resources:
        parent = urns.get(res.parent or "")
        if parent is not None:
            assert res.name.startswith(f"{parent.name}-"), f"{res.name!r} is not prefixed by {parent.name!r}-"


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_lives_in_a_component(records: dict[str, Record], stack: str) -> None:
    stray = [res.urn for res in records[stack].resources if res.custom and res.parent is None]
    stray += [
        res.urn
        for res in records[stack].resources
        if res.custom and res.parent is not None and res.parent.split("::")[2] == "pulumi:pulumi:Stack"
    ]
    assert not stray, f"custom resources registered outside any component: {stray}"


@pytest.mark.parametrize("stack", STACKS)
def test_known_secrets_never_recorded(
    plans: dict[str, dict[str, Any]], known_secrets: dict[str, str], stack: str
) -> None:
    text = json.dumps(plans[stack], default=str)
    for key, value in known_secrets.items():
        assert value not in text, f"the value of {key} leaked into the plan of {stack}"
    assert "offline-stand-in-for" not in text


def _secret_consumer(cfg) -> None:  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    comp = pulumi.ComponentResource("visionrag:test:Secrets", "sec")
    secret = aws.secretsmanager.Secret("sec-llm", name="x", opts=pulumi.ResourceOptions(parent=comp))
    aws.secretsmanager.SecretVersion(
        "sec-llm-v1",
        secret_id=secret.id,
        secret_string=pulumi.Config("visionrag").require_secret("llmApiKey"),
        opts=pulumi.ResourceOptions(parent=comp),
    )
    pulumi.export("leak", pulumi.Config("visionrag").require_secret("llmApiKey"))


def test_secret_inputs_and_outputs_are_masked(known_secrets: dict[str, str]) -> None:
    r = run_stack("dev", secrets=known_secrets, program=_secret_consumer)
    version = r.one("aws:secretsmanager/secretVersion:SecretVersion", "sec-llm-v1")
    assert version.inputs["secretString"] == SECRET
    assert r.outputs["leak"] == SECRET
    text = json.dumps(build_plan(r), default=str)
    assert known_secrets["visionrag:llmApiKey"] not in text


@pytest.mark.parametrize("stack", STACKS)
def test_program_reads_the_same_config_from_the_engine(records: dict[str, Record], stack: str) -> None:
    """The recorded graph comes from stacks.program.main() (what `pulumi up` runs), which reads its config from the
    engine's config map; that config must be the one the offline engine validated up front."""
    seen: list[StackConfig] = []
    run_stack(stack, program=lambda _cfg: seen.append(config_from_pulumi(pulumi.get_stack())))
    assert seen == [records[stack].config]
