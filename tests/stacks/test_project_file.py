"""Pulumi.yaml and the stack files are what the real CLI reads: they must be accepted unchanged by it.

The rules checked are the CLI's own (pulumi/pulumi sdk/go/common/workspace: project.json schema, Project.Validate,
and the stack-config merge): a `type` is one of string|integer|boolean|array (objects are declared untyped), an
array type names its `items`, a default matches its type, and a project key with no default must be set in every
stack (else "Stack 'x' is missing configuration value"), and a typed `secret: true` key must hold a `secure:` value
after the merge, so a declared default (stored plain) fails every stack (pkg/workspace/config.go). On top, our own:
every StackConfig field is declared and described, optional secrets are not declared (the CLI cannot make a secret
optional), and the root __main__.py hands over to stacks.program.main.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.config import SECRET_KEYS, StackConfig
from stacks.engine.offline import ROOT, apply_project_config, read_project_config, read_stack_file

SIMPLE_TYPES = {"string", "integer", "boolean", "array"}
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_runtime_and_entry_point(project: dict[str, Any]) -> None:
    assert project["name"] == "visionrag"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    main = (ROOT / "__main__.py").read_text()
    assert "from stacks.program import main" in main


def test_declarations_follow_the_cli_schema(project: dict[str, Any]) -> None:
    for key, decl in project["config"].items():
        assert isinstance(decl, dict), key
        assert set(decl) <= {"type", "description", "items", "default", "secret", "value"}, key
        assert decl.get("description"), f"{key} is not documented"
        if "type" in decl:
            assert decl["type"] in SIMPLE_TYPES, f"{key}: type {decl['type']!r} is not allowed by the CLI"
            if decl["type"] == "array":
                assert "items" in decl, key
            if "default" in decl and decl["type"] == "string":
                assert isinstance(decl["default"], str), key
        assert not ("default" in decl and "value" in decl), key


def test_every_config_field_is_declared(project: dict[str, Any]) -> None:
    declared = {k.split(":", 1)[1] for k in project["config"] if k.startswith("visionrag:")}
    fields = {f.alias or name for name, f in StackConfig.model_fields.items()}
    assert fields == declared
    # Optional secrets cannot be declared (see test_no_declared_secret_can_be_stored_plain); Pulumi.yaml lists
    # them in its comment instead.
    assert not SECRET_KEYS & declared
    for key in SECRET_KEYS:
        assert f"visionrag:{key}" in (ROOT / "Pulumi.yaml").read_text(), f"Pulumi.yaml does not mention {key}"


def test_object_keys_are_untyped_and_default_to_empty(project: dict[str, Any]) -> None:
    for name, field in StackConfig.model_fields.items():
        decl = project["config"][f"visionrag:{field.alias or name}"]
        if isinstance(decl.get("default"), dict):
            assert "type" not in decl


@pytest.mark.parametrize("stack", STACKS)
def test_every_required_key_is_set(stack: str) -> None:
    values = read_stack_file(stack)
    for key, decl in read_project_config().items():
        if "default" not in decl and "value" not in decl:
            assert key in values, f"the CLI would refuse stack {stack}: {key} has no default and is not set"
    merged = apply_project_config(stack, values)
    assert merged["visionrag:tier"] in ("", stack)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_set_only_declared_or_provider_keys(project: dict[str, Any], stack: str) -> None:
    for key in read_stack_file(stack):
        namespace = key.split(":", 1)[0]
        assert namespace in ("aws", "visionrag"), key
        if namespace == "visionrag" and key.split(":", 1)[1] not in SECRET_KEYS:
            assert key in project["config"], f"{key} in Pulumi.{stack}.yaml is not declared in Pulumi.yaml"


def test_no_declared_secret_can_be_stored_plain(project: dict[str, Any]) -> None:
    # A `secret: true` declaration with a default: the CLI stores the default as plain config, then refuses the
    # stack ("must be encrypted as it's secret"). Untyped, the CLI skips the check and `secret` means nothing.
    for key, decl in project["config"].items():
        if decl.get("secret"):
            assert "default" not in decl and "value" not in decl, f"{key}: a secret's default is stored plain"
            assert "type" in decl, f"{key}: the CLI enforces `secret: true` only on a typed key"
            for stack in STACKS:
                value = read_stack_file(stack).get(key)
                assert isinstance(value, dict) and set(value) == {"secure"}, f"{key} is not secure: in {stack}"


def test_no_plaintext_secret_in_stack_files() -> None:
    for path in Path(ROOT).glob("Pulumi.*.yaml"):
        for key, value in (yaml.safe_load(path.read_text())["config"] or {}).items():
            if key.split(":", 1)[-1] in SECRET_KEYS:
                assert isinstance(value, dict) and set(value) == {"secure"}, f"{path.name}: {key} is plaintext"
