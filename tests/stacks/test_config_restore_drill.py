"""`workloads.restoreDrill`: tier defaults (on in prod only) and bad values refused as ConfigErrors naming the key,
with the bounds the drill component owns (infra/workloads/restore_drill.py), before any resource is registered."""

from __future__ import annotations

from typing import Any

import pytest

from infra.workloads.restore_drill import QUERIES, TOP_K
from stacks.config import ConfigError
from stacks.engine import offline
from stacks.engine.offline import run_stack


@pytest.fixture
def engine_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def spy(stack: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the engine started for {stack!r} although the config is invalid")

    monkeypatch.setattr(offline, "_run", spy)


@pytest.mark.parametrize(("stack", "enabled"), [("dev", False), ("staging", False), ("prod", True)])
def test_tier_defaults(stack: str, enabled: bool) -> None:
    captured: list[Any] = []
    run_stack(stack, program=captured.append)
    assert captured[0].workloads.restore_drill.enabled is enabled


@pytest.mark.parametrize(
    ("drill", "fragments"),
    [
        ({"schedule": "@monthly"}, ["'@monthly'", "5-field cron"]),
        ({"queries": QUERIES[1] + 1}, [str(QUERIES[1])]),
        ({"topK": TOP_K[0] - 1}, [str(TOP_K[0])]),
        ({"minOverlap": 2}, ["1"]),
        ({"maxDrift": -0.1}, ["0"]),
        ({"enable": True}, ["enable"]),
    ],
)
@pytest.mark.usefixtures("engine_never_runs")
def test_bad_values_name_the_key(drill: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("prod", overrides={"visionrag:workloads": {"restoreDrill": drill}})
    problems = dict(exc.value.problems)
    key = next(k for k in problems if k.startswith("workloads.restoreDrill"))
    for fragment in fragments:
        assert fragment in problems[key] or fragment in key, (fragment, key, problems[key])
