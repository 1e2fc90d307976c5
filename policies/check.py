"""Judge a saved plan: ``python -m policies.check PLAN.json --config policies/config/<stack>.json``.

The plan is what ``python -m stacks preview <stack> --format json`` prints; editing it and checking again is how
a change is judged (and how the tests mutate the real prod plan) without re-running the program.
Exit status: 1 when any mandatory violation, 0 otherwise, 2 when the plan or the pack config cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from policies.evaluator import CONFIG_DIR, PackConfigError, Violation, evaluate_plan, load_pack_config
from policies.sarif import to_sarif

EXIT_OK, EXIT_MANDATORY, EXIT_UNUSABLE = 0, 1, 2


class PlanError(ValueError):
    pass


def load_plan(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise PlanError(f"cannot read plan {path}: {e.strerror}") from e
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"plan {path} is not JSON: {e}") from e
    if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
        raise PlanError(f"plan {path} has no 'resources' list (expected `python -m stacks preview --format json`)")
    for i, r in enumerate(plan["resources"]):
        if not isinstance(r, dict) or not isinstance(r.get("urn"), str) or not isinstance(r.get("type"), str):
            raise PlanError(f"plan {path}: resources[{i}] lacks a string 'urn' and 'type'")
    return plan


def stack_mismatch(plan: dict[str, Any], config_path: str) -> str | None:
    """A warning when the plan is one stack's and the pack config another's (`policies/config/<stack>.json`):
    the verdict would then be judged against the wrong budget, CIDR allow-list and exemptions."""
    stack = plan.get("stack")
    named = Path(config_path).stem
    known = {p.stem for p in CONFIG_DIR.glob("*.json")}
    if isinstance(stack, str) and named in known and named != stack:
        return (
            f"the plan is stack {stack!r} but {config_path} is the pack config of stack {named!r}; "
            f"use policies/config/{stack}.json"
        )
    return None


def _short(urn: str | None) -> str:
    if not urn:
        return "(stack)"
    return urn.rsplit("::", 1)[-1]


def render_table(violations: Sequence[Violation], out: TextIO) -> None:
    if not violations:
        out.write("policy: no violations\n")
        return
    rows = sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn or ""))
    width_p = max(len(v.policy) for v in rows)
    width_r = min(40, max(len(_short(v.urn)) for v in rows))
    out.write(f"{'LEVEL':<10} {'POLICY':<{width_p}} {'RESOURCE':<{width_r}} MESSAGE\n")
    for v in rows:
        out.write(f"{v.level:<10} {v.policy:<{width_p}} {_short(v.urn):<{width_r}} {v.message}\n")
    mandatory = sum(v.level == "mandatory" for v in violations)
    out.write(f"\n{mandatory} mandatory, {len(violations) - mandatory} advisory\n")


def render_markdown(violations: Sequence[Violation], out: TextIO) -> None:
    """For a pull-request comment: a verdict line, then one row per violation (mandatory first)."""
    mandatory = sum(v.level == "mandatory" for v in violations)
    verdict = "fails" if mandatory else "passes"
    out.write(f"**Policy pack {verdict}**: {mandatory} mandatory, {len(violations) - mandatory} advisory\n")
    if not violations:
        return
    out.write("\n| level | policy | resource | message |\n|---|---|---|---|\n")
    for v in sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn or "")):
        message = v.message.replace("|", "\\|").replace("\n", " ")
        out.write(f"| {v.level} | `{v.policy}` | `{_short(v.urn)}` | {message} |\n")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="plan JSON from `python -m stacks preview <stack> --format json` ('-' = stdin)")
    parser.add_argument("--config", required=True, help="pack config, e.g. policies/config/prod.json")
    parser.add_argument("--format", choices=("table", "json", "sarif", "markdown"), default="table")
    parser.add_argument("--output", help="write the report here instead of stdout")
    parser.add_argument("--artifact-uri", help="SARIF location (default: Pulumi.<stack>.yaml of the plan)")
    args = parser.parse_args(argv)
    try:
        plan = load_plan(args.plan)
        if (mismatch := stack_mismatch(plan, args.config)) is not None:
            err.write(f"warning: {mismatch}\n")
        violations = evaluate_plan(plan, load_pack_config(args.config))
    except (PlanError, PackConfigError) as e:
        err.write(f"error: {e}\n")
        return EXIT_UNUSABLE
    target = open(args.output, "w") if args.output else out  # noqa: SIM115 - closed below
    try:
        if args.format == "table":
            render_table(violations, target)
        elif args.format == "markdown":
            render_markdown(violations, target)
        elif args.format == "json":
            mandatory = sum(v.level == "mandatory" for v in violations)
            doc = {
                "violations": [v.to_dict() for v in violations],
                "summary": {"mandatory": mandatory, "advisory": len(violations) - mandatory},
            }
            json.dump(doc, target, indent=2)
            target.write("\n")
        else:
            stack = plan.get("stack")
            uri = args.artifact_uri or (f"Pulumi.{stack}.yaml" if stack else Path(args.plan).name)
            json.dump(to_sarif(violations, artifact_uri=uri), target, indent=2)
            target.write("\n")
    finally:
        if target is not out:
            target.close()
    return EXIT_MANDATORY if any(v.level == "mandatory" for v in violations) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
