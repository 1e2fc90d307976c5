"""`python -m policies.check`: formats, exit statuses, SARIF 2.1.0 shape."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from policies.check import main
from policies.rules import ALL_POLICIES
from tests.policies.policy_plans import find

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-subset.schema.json").read_text())
PROD = str(ROOT / "policies" / "config" / "prod.json")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def broken_plan_file(plan, tmp_path: Path) -> Path:
    find(plan, "aws:lb/listener:Listener", "-https")["inputs"]["sslPolicy"] = "ELBSecurityPolicy-2016-08"
    find(plan, "aws:kms/key:Key", "-data")["inputs"]["enableKeyRotation"] = False
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_clean_plan_exits_zero(plan, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    code, out, _ = _run(str(path), "--config", PROD)
    assert code == 0
    assert out.strip() == "policy: no violations"


def test_mandatory_violation_exits_one_with_table(broken_plan_file: Path) -> None:
    code, out, _ = _run(str(broken_plan_file), "--config", PROD)
    assert code == 1
    assert "alb-listener-tls" in out and "visionrag-prod-https" in out and "kms-key-rotation" in out
    assert out.rstrip().endswith("2 mandatory, 0 advisory")


def test_advisory_only_exits_zero(broken_plan_file: Path, tmp_path: Path) -> None:
    config = json.loads(Path(PROD).read_text())
    config["alb-listener-tls"]["enforcementLevel"] = "advisory"
    config["kms-key-rotation"] = {"enforcementLevel": "advisory"}
    cfg = tmp_path / "advisory.json"
    cfg.write_text(json.dumps(config))
    code, out, _ = _run(str(broken_plan_file), "--config", str(cfg), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert {v["level"] for v in doc["violations"]} == {"advisory"}
    assert doc["summary"] == {"mandatory": 0, "advisory": 2}


def test_json_format_contract(broken_plan_file: Path) -> None:
    code, out, _ = _run(str(broken_plan_file), "--config", PROD, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    for v in doc["violations"]:
        assert set(v) == {"policy", "level", "message", "urn"}
        assert v["level"] in ("mandatory", "advisory")
    assert {v["policy"] for v in doc["violations"]} == {"alb-listener-tls", "kms-key-rotation"}


def test_sarif_validates_and_points_at_the_stack_file(broken_plan_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.sarif"
    code, out, _ = _run(str(broken_plan_file), "--config", PROD, "--format", "sarif", "--output", str(target))
    assert code == 1 and out == ""
    doc = json.loads(target.read_text())
    jsonschema.validate(doc, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules) == len(ALL_POLICIES)
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"alb-listener-tls", "kms-key-rotation"}
    for r in results:
        assert r["level"] == "error"
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Pulumi.prod.yaml"
        assert r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith("urn:pulumi:prod::")
    assert float(rules[[x["id"] for x in rules].index("alb-listener-tls")]["properties"]["security-severity"]) >= 7


def test_sarif_schema_rejects_a_broken_document() -> None:
    # The subset schema is not vacuous: a result without a message or a bad level is refused.
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "fatal"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SARIF_SCHEMA)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read plan"),
        ("{not json", "is not JSON"),
        ('{"stack": "prod"}', "has no 'resources' list"),
        ('{"resources": [{"type": "x"}]}', "resources[0] lacks"),
    ],
)
def test_unreadable_plan_exits_two(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    code, out, err = _run(str(path), "--config", PROD)
    assert code == 2 and out == ""
    assert fragment in err


def test_bad_pack_config_exits_two(plan, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"no-such-policy": "mandatory"}))
    code, _, err = _run(str(path), "--config", str(cfg))
    assert code == 2 and "unknown policies ['no-such-policy']" in err
    code, _, err = _run(str(path), "--config", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read pack config" in err


def test_module_entry_point(broken_plan_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "policies.check", str(broken_plan_file), "--config", PROD, "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert len(json.loads(proc.stdout)["violations"]) == 2


def test_markdown_for_pull_request_comments(broken_plan_file: Path) -> None:
    code, out, _ = _run(str(broken_plan_file), "--config", PROD, "--format", "markdown")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "**Policy pack fails**: 2 mandatory, 0 advisory"
    assert "| mandatory | `alb-listener-tls` | `visionrag-prod-https` |" in out
    assert len([line for line in lines if line.startswith("| mandatory")]) == 2


def test_another_stacks_pack_config_is_warned_about(plan, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plan["stack"] = "prod"
    path.write_text(json.dumps(plan))
    dev = str(ROOT / "policies" / "config" / "dev.json")
    _, _, err = _run(str(path), "--config", dev)
    assert "warning: the plan is stack 'prod'" in err and "pack config of stack 'dev'" in err
    assert "use policies/config/prod.json" in err
    _, _, err = _run(str(path), "--config", PROD)
    assert "warning" not in err
