"""`python -m stacks`: formats, exit statuses, the plan JSON contract and the policy-pack seam.

The stacks' records come from the session fixture (tests/conftest.py) so no test here reruns a whole stack; one
test runs the real module in a subprocess to prove the entry point itself.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from stacks import cli
from stacks.engine import plan as plan_mod
from stacks.engine.offline import ROOT, Record, run_stack
from stacks.engine.plan import build_plan

STACKS = ("dev", "staging", "prod")
PLAN_KEYS = {
    "format",
    "stack",
    "config",
    "resources",
    "outputs",
    "policyPack",
    "violations",
    "cost",
    "manifests",
    "awsValues",
    "summary",
}
RESOURCE_KEYS = {"urn", "type", "name", "parent", "dependencies", "inputs", "outputs", "custom", "provider"}


@pytest.fixture
def use_records(monkeypatch: pytest.MonkeyPatch, records: dict[str, Record]) -> dict[str, Record]:
    monkeypatch.setattr(cli, "run_stack", lambda stack: records[stack])
    return records


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stack", STACKS)
def test_json_is_the_documented_plan(use_records: dict[str, Record], stack: str) -> None:
    code, out, _ = _cli("preview", stack, "--format", "json")
    plan = json.loads(out)
    assert set(plan) == PLAN_KEYS
    assert plan["format"] == plan_mod.PLAN_FORMAT
    assert plan["stack"] == stack
    assert plan["config"]["tier"] == stack
    assert "llmApiKey" not in json.dumps(plan["config"])
    for r in plan["resources"]:
        assert set(r) == RESOURCE_KEYS
    assert [r["urn"] for r in plan["resources"]] == sorted(r["urn"] for r in plan["resources"])
    for v in plan["violations"]:
        assert {"policy", "level", "message", "urn"} <= set(v)
        assert v["level"] in ("mandatory", "advisory")
    assert {"valid", "kubernetesVersion", "errors"} <= set(plan["manifests"])
    assert {"valid", "checked", "errors"} <= set(plan["awsValues"])
    assert code == (0 if plan["summary"]["ok"] else 1)


@pytest.mark.parametrize("stack", STACKS)
def test_policy_pack_and_cost_are_wired(use_records: dict[str, Record], stack: str) -> None:
    """The real evaluator and estimator run (not the 'not available' fallback) with the stack's pack config."""
    plan = json.loads(_cli("preview", stack, "--format", "json")[1])
    assert plan["policyPack"]["available"], plan["policyPack"]["notice"]
    assert plan["policyPack"]["config"] == f"policies/config/{stack}.json"
    assert plan["cost"]["available"]
    assert plan["cost"]["currency"] == "USD"
    assert plan["cost"]["monthlyTotal"] > 0


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_pass(use_records: dict[str, Record], stack: str) -> None:
    code, out, _ = _cli("preview", stack, "--format", "json")
    plan = json.loads(out)
    blocking = [v for v in plan["violations"] if v["level"] == "mandatory"]
    assert not blocking, blocking
    assert code == 0


def test_table_sections_in_order(use_records: dict[str, Record]) -> None:
    code, out, _ = _cli("preview", "prod")
    positions = [
        out.index(h)
        for h in (
            "\nResources:",
            "\nPolicy violations\n",
            "\nCost\n",
            "\nKubernetes manifests:",
            "\nAWS values:",
            "\nResult:",
        )
    ]
    assert positions == sorted(positions)
    plan = build_plan(use_records["prod"])
    assert f"Resources: {plan['summary']['resources']} " in out
    assert ("Result: OK" in out) == (code == 0)


def test_markdown_is_a_pr_comment(use_records: dict[str, Record]) -> None:
    code, out, _ = _cli("preview", "staging", "--format", "markdown")
    assert out.startswith("### `staging`: offline preview")
    for heading in ("#### Policy violations", "#### Cost", "#### Kubernetes manifests", "#### AWS values"):
        assert heading in out
    assert "<details><summary>Resources by component</summary>" in out
    assert ("✅ OK" in out) == (code == 0)


def test_plan_out_writes_json_next_to_other_format(use_records: dict[str, Record], tmp_path: Path) -> None:
    target = tmp_path / "plans" / "dev.json"
    _, out, _ = _cli("preview", "dev", "--format", "markdown", "--plan-out", str(target))
    assert out.startswith("### `dev`")
    assert json.loads(target.read_text())["stack"] == "dev"


@pytest.mark.parametrize(
    "argv",
    [
        ["preview"],
        ["preview", "qa"],
        ["preview", "dev", "--format", "yaml"],
        ["manifests", "dev"],
        ["deploy", "dev"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, _ = _cli(*argv)
    assert code == 2
    assert out == ""


def test_verify_is_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.verify import post_deploy as verify

    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(list(argv))
        return 7

    monkeypatch.setattr(verify, "main", fake_main)
    assert _cli("verify", "prod", "--outputs", "-")[0] == 7
    assert seen == [["prod", "--outputs", "-"]]


def _public_bucket(cfg) -> None:  # type: ignore[no-untyped-def]
    comp = pulumi.ComponentResource("visionrag:test:Storage", "store")
    aws.s3.Bucket("store-open", bucket="visionrag-dev-open", opts=pulumi.ResourceOptions(parent=comp))


def test_mandatory_violation_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket with none of its guard rails: the real policy pack blocks it."""
    record = run_stack("dev", program=_public_bucket)
    monkeypatch.setattr(cli, "run_stack", lambda stack: record)
    code, out, _ = _cli("preview", "dev", "--format", "json")
    plan = json.loads(out)
    mandatory = [v for v in plan["violations"] if v["level"] == "mandatory"]
    assert mandatory
    resource_level = {v["urn"] for v in mandatory if v["urn"] is not None}
    assert resource_level == {record.one("aws:s3/bucket:Bucket", "store-open").urn}
    # A one-bucket program in the registry-owning stack also lacks the registry (a stack-level finding).
    assert {v["policy"] for v in mandatory if v["urn"] is None} <= {"ecr-registry-owner"}
    assert code == 1
    table = _cli("preview", "dev")[1]
    assert "[MANDATORY]" in table and "Result: BLOCKED" in table


def test_missing_policy_pack_is_a_notice_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, use_records: dict[str, Record]
) -> None:
    monkeypatch.setattr(plan_mod, "EVALUATOR_MODULE", "policies.no_such_evaluator")
    monkeypatch.setattr(plan_mod, "COST_MODULE", "policies.no_such_cost")
    code, out, _ = _cli("preview", "dev", "--format", "json")
    plan = json.loads(out)
    assert plan["policyPack"] == {
        "available": False,
        "config": None,
        "notice": "policy pack not available (policies.no_such_evaluator is missing): policies were NOT evaluated",
    }
    assert plan["violations"] == []
    assert plan["cost"]["available"] is False
    assert "NOTICE: policy pack not available" in _cli("preview", "dev")[1]
    assert code == 0


def test_bad_pack_config_exits_2(
    monkeypatch: pytest.MonkeyPatch, use_records: dict[str, Record], tmp_path: Path
) -> None:
    bad = tmp_path / "dev.json"
    bad.write_text(json.dumps({"s3-sse-kms": "sometimes"}))
    monkeypatch.setattr(plan_mod, "pack_config_path", lambda stack, root=ROOT: bad)
    code, out, err = _cli("preview", "dev", "--format", "json")
    assert code == 2
    assert out == ""
    assert "policy pack config for stack 'dev'" in err and "sometimes" in err


def test_broken_policy_pack_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the pack's absence is tolerated: an import error inside it must not read as 'no violations'."""
    import types

    broken = types.ModuleType("policies.fake_evaluator")

    def evaluate_plan(plan: dict[str, Any], pack_config: dict[str, Any]) -> list[Any]:
        raise RuntimeError("rule crashed")

    broken.evaluate_plan = evaluate_plan  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "policies.fake_evaluator", broken)
    monkeypatch.setattr(plan_mod, "EVALUATOR_MODULE", "policies.fake_evaluator")
    with pytest.raises(RuntimeError, match="rule crashed"):
        plan_mod.evaluate_policies({"resources": []}, "dev")


def test_module_entry_point_propagates_exit_status() -> None:
    """`python -m stacks` is wired to cli.main and exits with its status (the full run is `make preview`)."""
    usage = subprocess.run(
        [sys.executable, "-m", "stacks", "preview", "qa"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2
    assert "invalid choice: 'qa'" in usage.stderr
    helped = subprocess.run([sys.executable, "-m", "stacks", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0
    assert "preview" in helped.stdout and "manifests" in helped.stdout and "verify" in helped.stdout


def test_an_invalid_instance_type_is_reported_once(monkeypatch: pytest.MonkeyPatch, record_of: Any) -> None:
    """awsValues owns value validity; the cost estimate and the cost policies do not repeat it."""
    # ON_DEMAND: dev's Spot default wants two instance types, and this test is about one bad one.
    bad = {"instanceTypes": ["m6i.larg"], "capacityType": "ON_DEMAND"}
    record = record_of("dev", overrides={"visionrag:cluster": {"systemNodes": bad}})
    monkeypatch.setattr(cli, "run_stack", lambda stack: record)
    code, out, _ = _cli("preview", "dev", "--format", "json")
    plan = json.loads(out)
    assert code == 1 and set(plan) == PLAN_KEYS
    mentions = [e for e in plan["awsValues"]["errors"] if e["value"] == "m6i.larg"]
    assert len(mentions) == 1 and "did you mean 'm6i.large'" in mentions[0]["message"]
    assert not [v for v in plan["violations"] if "m6i.larg" in v["message"]]
    assert "error" not in plan["cost"] and "invalid AWS value" in plan["cost"]["notice"]
    assert plan["summary"]["costErrors"] == 0 and plan["summary"]["invalidAwsValues"] == 1


def test_a_region_outside_the_price_table_is_advisory(use_records: dict[str, Record]) -> None:
    plan = build_plan(use_records["dev"])
    plan["config"]["region"] = "ap-south-2"
    plan["cost"] = plan_mod.estimate_cost(plan)
    assert plan["cost"]["available"] and "error" not in plan["cost"]
    assert plan["cost"]["notice"].startswith("unpriced (advisory): region 'ap-south-2'")
    assert plan_mod.summarize(plan)["ok"]
    from stacks.engine.render import render_markdown, render_table

    assert "NOTICE: unpriced (advisory)" in render_table(plan)
    assert "unpriced (advisory)" in render_markdown(plan)
