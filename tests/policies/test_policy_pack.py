"""The pack as the Pulumi CLI loads it, its policies' metadata, and the per-stack pack configs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi_policy import EnforcementLevel, StackValidationPolicy

from policies.evaluator import resolve_config, stack_pack_config
from policies.rules import ALL_POLICIES, DOMAIN_OF
from policies.sarif import PACK_VERSION
from stacks.config.tiers import TIER_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policies"
STACKS = ("dev", "staging", "prod")


_PROBE = """
import json, runpy, sys
import pulumi_policy
calls = []
pulumi_policy.PolicyPack = lambda **kw: calls.append(kw)
runpy.run_path(".", run_name="__main__")
import secrets
(kw,) = calls
print(json.dumps({
    "name": kw["name"],
    "enforcement": kw["enforcement_level"].value,
    "policy_names": [p.name for p in kw["policies"]],
    "policies": len(kw["policies"]),
    "rules_file": sys.modules["policies.rules"].__file__,
    "secrets_module": secrets.__file__,
    "token": len(secrets.token_hex(4)),
    "offline_only_loaded": sorted(m for m in ("policies.evaluator", "jsonschema") if m in sys.modules),
}))
"""


def test_cli_path_imports_from_inside_a_standalone_pack_directory(tmp_path: Path) -> None:
    # The one place __main__.py is run (never imported): exactly as `pulumi.policy.__main__` runs a pack, with
    # runpy.run_path on the pack directory, and PolicyPack replaced so no gRPC server starts. The CLI's working
    # directory is the pack and the pack is first on sys.path; a published pack is only this directory, so it
    # is copied out of the repository: nothing but the pack itself can satisfy its imports.
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=pack, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["policies"] == len(ALL_POLICIES)
    assert report["policy_names"] == [p.name for p in ALL_POLICIES]
    assert report["enforcement"] == "mandatory"
    assert re.fullmatch(r"[a-zA-Z0-9-_.]{1,100}", report["name"])
    assert report["rules_file"].startswith(str(pack))
    # Rule modules named like stdlib/third-party modules (secrets, kubernetes) must not shadow them.
    assert not report["secrets_module"].startswith(str(pack)) and report["token"] == 8
    # The CLI needs only requirements.txt: the offline evaluator and its jsonschema stay unloaded.
    assert report["offline_only_loaded"] == []


def test_pulumi_policy_yaml_declares_python_runtime_and_requirements() -> None:
    meta = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["version"] == PACK_VERSION
    reqs = (PACK / "requirements.txt").read_text()
    assert "pulumi-policy==" in reqs and "pulumi==" in reqs


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_every_policy_is_documented(policy) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name)
    assert policy.description.endswith(".") and len(policy.description) > 30
    assert policy.severity is not None
    assert policy.remediation_steps and len(policy.remediation_steps) > 20
    assert policy.config_schema is not None and "justification" in policy.config_schema.properties
    assert policy.tags
    assert policy.name in DOMAIN_OF
    docs = (ROOT / "docs" / "policies.md").read_text()
    assert f"`{policy.name}`" in docs, f"docs/policies.md does not describe {policy.name}"


def test_bucket_rules_are_stack_policies() -> None:
    assert all(isinstance(p, StackValidationPolicy) for p in ALL_POLICIES if p.name.startswith("s3-"))


@pytest.mark.parametrize("stack", STACKS)
def test_pack_config_lists_every_policy_and_is_valid(stack: str) -> None:
    config = stack_pack_config(stack)
    assert set(config) == {p.name for p in ALL_POLICIES}
    resolved = resolve_config(config)
    for name, entry in config.items():
        level = resolved[name].level
        if level != EnforcementLevel.MANDATORY:
            assert entry.get("justification"), f"{stack}: {name} is {level.value} without a justification"


def test_hardened_stacks_are_mandatory_except_tier_differences() -> None:
    allowed_off = {"staging": {"s3-replication"}, "prod": set()}
    for stack, exceptions in allowed_off.items():
        resolved = resolve_config(stack_pack_config(stack))
        weaker = {n for n, r in resolved.items() if r.level != EnforcementLevel.MANDATORY}
        assert weaker == exceptions


@pytest.mark.parametrize("stack", STACKS)
def test_guardrails_match_the_tier(stack: str) -> None:
    config = stack_pack_config(stack)
    tier = TIER_DEFAULTS[stack]
    assert config["cost-monthly-budget"]["monthlyBudgetUsd"] == tier["observability"]["monthlyBudgetUsd"]
    assert config["cost-gpu-ceiling"]["maxGpuNodes"] >= tier["cluster"]["gpuNodes"]["maxSize"]
    assert config["k8s-image-pinning"]["requireDigest"] == tier["workloads"]["requireDigests"]
    assert config["eks-endpoint-private"]["allowPublicEndpoint"] == tier["cluster"]["endpointPublicAccess"]


def test_dev_public_endpoint_allow_list_covers_the_dev_stack() -> None:
    dev_yaml = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    cidrs = dev_yaml["config"]["visionrag:cluster"]["publicAccessCidrs"]
    assert set(cidrs) <= set(stack_pack_config("dev")["eks-endpoint-private"]["allowedPublicCidrs"])
    assert all(not c.endswith("/0") for c in stack_pack_config("dev")["eks-endpoint-private"]["allowedPublicCidrs"])


def test_docs_table_matches_the_pack_configs() -> None:
    rows = {}
    for line in (ROOT / "docs" / "policies.md").read_text().splitlines():
        m = re.match(r"\| `([a-z0-9-]+)` \| .* \| ([a-z]+)[^|]* \| ([a-z]+)[^|]* \| ([a-z]+)[^|]* \|$", line)
        if m:
            rows[m.group(1)] = m.groups()[1:]
    assert set(rows) == {p.name for p in ALL_POLICIES}
    for stack_index, stack in enumerate(STACKS):
        resolved = resolve_config(stack_pack_config(stack))
        for name, levels in rows.items():
            assert levels[stack_index] == resolved[name].level.value, (
                f"docs say {name} is {levels[stack_index]} in {stack}"
            )
