"""The plan JSON's engine side: byte-stable, the same whether stacks are planned in turn or side by side, and the
engine's speed-ups (the garbage collector paused during a run, the record copied without dataclasses.asdict)
invisible in what it returns."""

from __future__ import annotations

import dataclasses
import gc
import json
from typing import Any

import pulumi_aws as aws
import pytest

from stacks.config import ConfigError
from stacks.engine import plan as plan_module
from stacks.engine.offline import Record, run_stack
from stacks.engine.plan import build_plan, plan_stacks


def _text(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, default=str)  # what `preview --format json` prints


def test_side_by_side_plans_are_the_plans_made_in_turn() -> None:
    # "staging" is planned in a worker forked after "dev" ran here; both must be what a plain run gives.
    side_by_side = plan_stacks(["dev", "staging"])
    assert list(side_by_side) == ["dev", "staging"]
    for stack, plan in side_by_side.items():
        assert _text(plan) == _text(build_plan(run_stack(stack)))


def test_a_stack_failing_in_a_worker_raises_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A ConfigError does not survive the trip back from a worker (its constructor takes the stack and the
    # problems, pickling keeps only the message): the stack is planned again here and the real error raised.
    real = plan_module.run_stack

    def run(stack: str) -> Record:
        if stack == "staging":
            raise ConfigError("staging", [("cluster.kubernetesVersion", "not one of 1.33, 1.34")])
        return real(stack)

    monkeypatch.setattr(plan_module, "run_stack", run)
    with pytest.raises(ConfigError, match="kubernetesVersion") as caught:
        plan_stacks(["dev", "staging"])
    assert caught.value.stack == "staging"


def test_manifests_and_aws_values_are_in_urn_order(plans: dict[str, dict[str, Any]]) -> None:
    # Registration order varies between runs (applies resolve concurrently): the plan lists what it found in
    # URN order, as it lists the resources, so two previews of the same code are byte-identical.
    for plan in plans.values():
        for key in ("objects", "errors", "unchecked"):
            urns = [o["urn"] for o in plan["manifests"][key]]
            assert urns == sorted(urns)
        urns = [e["urn"] for e in plan["awsValues"]["errors"]]
        assert urns == sorted(urns)


def test_recorded_resource_dict_is_asdict_and_a_copy(records: dict[str, Record]) -> None:
    for r in records["dev"].resources:
        assert r.to_dict() == dataclasses.asdict(r)
    withtags = next(r for r in records["dev"].resources if isinstance(r.inputs.get("tags"), dict))
    d = withtags.to_dict()
    d["inputs"]["tags"]["changed"] = "yes"
    d["dependencies"].append("urn:other")
    assert "changed" not in withtags.inputs["tags"] and "urn:other" not in withtags.dependencies


def _tiny(cfg: object) -> None:
    aws.kms.Key("gc-key", enable_key_rotation=True)


def test_a_run_leaves_the_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    run_stack("dev", program=_tiny)
    assert gc.isenabled()
    gc.disable()
    try:
        run_stack("dev", program=_tiny)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_run_frees_its_garbage_cycles() -> None:
    # The collector is paused during a run and one collection runs at its end: nothing the engine allocated in
    # cycles (futures, resources, the loop) survives it, so repeated runs do not grow the heap.
    run_stack("dev", program=_tiny)
    before = gc.get_freeze_count() + len(gc.get_objects())
    for _ in range(3):
        run_stack("dev", program=_tiny)
    # ~80-420 measured (the mock monitor's last record and loop state vary with timing); ~1,400 when uncollected.
    assert gc.get_freeze_count() + len(gc.get_objects()) - before < 800
