"""The plan JSON: one document per stack that says what would be deployed and whether it may be.

It is what `python -m stacks preview <stack> --format json` prints, what the PR comment is rendered from, and
what the policy evaluator and cost estimator read. The format is stable and documented in README.md ("The plan
JSON"); `PLAN_FORMAT` changes only when a key changes meaning or disappears.

The policy evaluator and the cost estimator belong to the policy pack (`policies/`). They are reached through
`evaluate_policies` and `estimate_cost` below, the one seam between the engine and the pack: when the pack's
module does not exist the plan says so (`policyPack.available: false` and a notice) instead of failing, so the
preview works while the pack is being written. Any other error inside the pack propagates: a broken policy must
never read as a passing one.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from stacks.engine.aws_values import check_aws_values
from stacks.engine.manifests import ManifestReport, build_manifests
from stacks.engine.offline import ROOT, Record, run_stack

PLAN_FORMAT = 1
EVALUATOR_MODULE = "policies.evaluator"
COST_MODULE = "policies.cost_estimator"


class PolicyPackError(ValueError):
    """The pack refused its own config (policies/config/<stack>.json): a config error, exit status 2."""


@dataclass
class PolicyOutcome:
    available: bool
    violations: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None
    pack_config: str | None = None


def _optional_module(name: str) -> ModuleType | None:
    """Import `name`, or None when that module itself does not exist (not when something it imports fails)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            return None
        raise


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def pack_config_path(stack: str, root: Path = ROOT) -> Path:
    return root / "policies" / "config" / f"{stack}.json"


def evaluate_policies(plan: Mapping[str, Any], stack: str, *, root: Path = ROOT) -> PolicyOutcome:
    module = _optional_module(EVALUATOR_MODULE)
    if module is None:
        return PolicyOutcome(
            available=False,
            notice=f"policy pack not available ({EVALUATOR_MODULE} is missing): policies were NOT evaluated",
        )
    path = pack_config_path(stack, root)
    notice = None
    if path.exists():
        pack_config = json.loads(path.read_text())
    else:
        # Same as `pulumi preview --policy-pack policies` without --policy-pack-config: every policy at its
        # default (mandatory) level.
        pack_config = {}
        notice = f"no pack config {_shown(path, root)}: every policy runs at its default level"
    config_error = getattr(module, "PackConfigError", None)
    try:
        found = module.evaluate_plan(dict(plan), pack_config)
    except Exception as e:
        if config_error is not None and isinstance(e, config_error):
            raise PolicyPackError(f"policy pack config for stack '{stack}': {e}") from e
        raise
    violations = [v.to_dict() if hasattr(v, "to_dict") else dict(v) for v in found]
    return PolicyOutcome(
        available=True,
        violations=violations,
        notice=notice,
        pack_config=_shown(path, root) if path.exists() else None,
    )


def estimate_cost(plan: Mapping[str, Any]) -> dict[str, Any]:
    module = _optional_module(COST_MODULE)
    if module is None:
        return {"available": False, "notice": f"cost estimator not available ({COST_MODULE} is missing)"}
    try:
        cost = dict(module.estimate_plan(dict(plan)))
    except ValueError as e:
        # The estimator refuses what it cannot price (an unknown instance type): that is a finding, not a crash.
        return {"available": True, "error": str(e)}
    return {"available": True, **cost}


def summarize(plan: Mapping[str, Any]) -> dict[str, Any]:
    resources = plan["resources"]
    violations = plan["violations"]
    mandatory = sum(1 for v in violations if v.get("level") == "mandatory")
    advisory = sum(1 for v in violations if v.get("level") != "mandatory")
    invalid_manifests = len(plan["manifests"]["errors"])
    invalid_aws = len(plan["awsValues"]["errors"])
    cost_error = 1 if plan["cost"].get("error") else 0
    return {
        "resources": len(resources),
        "customResources": sum(1 for r in resources if r["custom"]),
        "components": sum(1 for r in resources if not r["custom"]),
        "mandatoryViolations": mandatory,
        "advisoryViolations": advisory,
        "invalidManifests": invalid_manifests,
        "invalidAwsValues": invalid_aws,
        "costErrors": cost_error,
        "ok": mandatory == 0 and invalid_manifests == 0 and invalid_aws == 0 and cost_error == 0,
    }


def build_plan(record: Record, *, root: Path = ROOT, manifests: ManifestReport | None = None) -> dict[str, Any]:
    """The full plan JSON for `record` (see README.md, "The plan JSON")."""
    plan: dict[str, Any] = {"format": PLAN_FORMAT, **record.to_plan()}
    outcome = evaluate_policies(plan, record.stack, root=root)
    plan["policyPack"] = {
        "available": outcome.available,
        "config": outcome.pack_config,
        "notice": outcome.notice,
    }
    plan["violations"] = outcome.violations
    plan["cost"] = estimate_cost(plan)
    report = manifests if manifests is not None else build_manifests(record)
    plan["manifests"] = report.to_dict()
    plan["awsValues"] = check_aws_values(record).to_dict()
    dedupe_invalid_values(plan)
    plan["summary"] = summarize(plan)
    return plan


def _plan_of(stack: str) -> dict[str, Any]:
    return build_plan(run_stack(stack))


def plan_stacks(stacks: Sequence[str], *, jobs: int | None = None) -> dict[str, dict[str, Any]]:
    """`build_plan(run_stack(s))` for every stack in `stacks` (in that order), the stacks side by side.

    The first stack runs in this process and pays the imports (the SDK submodules the program uses: about half
    of all the CPU time); the others then run in up to `jobs` workers (default: the CPU count) forked from this
    process, which inherit those imports, while this process judges the first. A stack that fails in a worker is
    planned again here, so its error (a ConfigError, a failed program, a broken pack) is raised exactly as a
    sequential run raises it. Where fork is not available, or jobs is 1, the stacks run in turn."""
    if not stacks:
        return {}
    first, rest = stacks[0], list(stacks[1:])
    record = run_stack(first)
    workers = min(len(rest), jobs or os.cpu_count() or 1)
    if workers < 1 or jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return {first: build_plan(record), **{s: _plan_of(s) for s in rest}}
    for stream in (sys.stdout, sys.stderr):  # a forked child would write out a copy of what is buffered
        stream.flush()
    plans: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {s: pool.submit(_plan_of, s) for s in rest}
        plans[first] = build_plan(record)
        for stack, future in futures.items():
            try:
                plans[stack] = future.result()
            except Exception:  # a worker error comes back pickled, if at all: the run below raises it
                plans[stack] = _plan_of(stack)
    return plans


def dedupe_invalid_values(plan: dict[str, Any]) -> None:
    """Report an invalid AWS value once, under awsValues (which owns value validity: it checks botocore's model
    and says what was meant). The cost estimator cannot price such a value either, and says so in its error and
    in the cost policies' "cannot price" violations: those repeats are dropped. Keys stay; only entries go."""
    bad = {repr(e["value"]) for e in plan["awsValues"]["errors"] if isinstance(e.get("value"), str)}
    if not bad:
        return

    def repeats(message: Any) -> bool:
        return isinstance(message, str) and "price" in message and any(b in message for b in bad)

    plan["violations"] = [
        v for v in plan["violations"] if not (str(v.get("policy", "")).startswith("cost-") and repeats(v["message"]))
    ]
    cost = plan["cost"]
    if repeats(cost.get("error")):
        plan["cost"] = {
            "available": True,
            "notice": f"not priced: an invalid AWS value (reported under awsValues): {cost['error']}",
        }


def exit_code(plan: Mapping[str, Any]) -> int:
    """0 when nothing blocks a deploy, 1 otherwise (mandatory violation, invalid manifest or AWS value)."""
    return 0 if plan["summary"]["ok"] else 1
