"""Repo-wide fixtures: every stack's offline record, computed once per test session.

Running the real program under mocks is the expensive part of the infra tests, so the whole suite shares one
record per stack:

    def test_something(records):            # dict[str, Record] for "dev", "staging", "prod"
        prod = records["prod"]

    def test_edited(record_of):             # record_of(stack, overrides=..., secrets=...) -> Record
        r = record_of("dev", overrides={"visionrag:cluster": {"gpuNodes": {"maxSize": 3}}})

    def test_judged(plans):                 # dict[str, dict]: the full plan JSON of each stack, built once
        assert plans["prod"]["summary"]["ok"]

`record_of` caches on (stack, overrides, secrets), so two tests asking for the same edit share one run. Records
and plans are shared objects: treat them as read-only. The stacks run with KNOWN_SECRETS (below) so a test can
assert that none of those values ever reaches a recorded input, output or the plan JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from stacks.engine.offline import Record, run_stack

STACKS = ("dev", "staging", "prod")

# Distinctive values so a leak is unambiguous when searched for in any serialised form.
KNOWN_SECRETS: dict[str, str] = {
    "visionrag:llmApiKey": "sk-known-test-llm-key-5b1f0c2e9d7a4e33",
}

RecordOf = Callable[..., Record]


def _key(stack: str, overrides: Mapping[str, Any] | None, secrets: Mapping[str, str] | None) -> str:
    return json.dumps([stack, overrides or {}, secrets or {}], sort_keys=True, default=str)


@pytest.fixture(scope="session")
def known_secrets() -> dict[str, str]:
    return dict(KNOWN_SECRETS)


@pytest.fixture(scope="session")
def record_of() -> RecordOf:
    """`record_of(stack, overrides=None, secrets=None) -> Record`, cached for the session.

    `secrets` is merged over KNOWN_SECRETS. A ConfigError propagates (and is not cached).
    """
    cache: dict[str, Record] = {}

    def get(
        stack: str, *, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None
    ) -> Record:
        merged = {**KNOWN_SECRETS, **(secrets or {})}
        key = _key(stack, overrides, merged)
        if key not in cache:
            cache[key] = run_stack(stack, overrides=overrides, secrets=merged)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def records(record_of: RecordOf) -> dict[str, Record]:
    """The record of each stack as committed (Pulumi.<stack>.yaml), with KNOWN_SECRETS."""
    return {stack: record_of(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def plans(records: dict[str, Record]) -> dict[str, dict[str, Any]]:
    """The full plan JSON (policies, cost, manifests, AWS values) of each committed stack, built once."""
    from stacks.engine.plan import build_plan

    return {stack: build_plan(record) for stack, record in records.items()}
