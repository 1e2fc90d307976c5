from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies.evaluator import Violation, evaluate_plan, stack_pack_config
from tests.policies.policy_plans import compliant_plan, fresh

Judge = Callable[..., list[Violation]]


@pytest.fixture(scope="session")
def _compliant() -> dict[str, dict[str, Any]]:
    return {s: compliant_plan(s) for s in ("dev", "staging", "prod")}


@pytest.fixture
def plans(_compliant: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fresh copies of the compliant plan per stack, free to mutate."""
    return {s: fresh(p) for s, p in _compliant.items()}


@pytest.fixture
def plan(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A fresh copy of the prod-like compliant plan, free to mutate."""
    return plans["prod"]


@pytest.fixture(scope="session")
def pack_configs() -> dict[str, dict[str, Any]]:
    return {s: stack_pack_config(s) for s in ("dev", "staging", "prod")}


@pytest.fixture
def judge(pack_configs: dict[str, dict[str, Any]]) -> Judge:
    def run(plan: dict[str, Any], stack: str = "prod", config: dict[str, Any] | None = None) -> list[Violation]:
        return evaluate_plan(plan, config if config is not None else pack_configs[stack])

    return run
