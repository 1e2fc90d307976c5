"""workloads.rateLimits: the api's rate limits are stack config with tier defaults, and reach the api pods.

Judged on the recorded program (stacks/program.py workloads_args -> infra/workloads): the env of the api and canary
containers carries the stack's limits; other workloads get none; a malformed limit is a ConfigError naming the
key before the engine starts.
"""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError
from stacks.config.tiers import TIER_DEFAULTS
from stacks.engine import offline
from stacks.engine.offline import Record, run_stack
from tests.conftest import RecordOf
from tests.infra.workloads.graph import DEPLOYMENT, by_name, containers, pod_template

CANARY_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api@sha256:" + "c" * 64
LIMITS = {"perIpPerMinute": 1200, "search": "5/second;200/minute", "chat": "30/minute", "upload": "100/hour"}


def _env(record: Record, deployment: str) -> dict[str, str]:
    # Every container of the pod, init containers included: the limits belong to the api process only.
    pod = containers(pod_template(by_name(record, DEPLOYMENT, deployment)))
    assert pod
    return {e["name"]: e.get("value") for c in pod for e in c.get("env", [])}


def _rate_env(env: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k.startswith("RATE_LIMIT_")}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_tier_defaults_reach_the_api_pods(records: dict[str, Record], stack: str) -> None:
    tier = TIER_DEFAULTS[stack]["workloads"]["rateLimits"]
    assert _rate_env(_env(records[stack], "api")) == {
        "RATE_LIMIT_PER_MINUTE": str(tier["perIpPerMinute"]),
        "RATE_LIMIT_SEARCH": tier["search"],
        "RATE_LIMIT_CHAT": tier["chat"],
        "RATE_LIMIT_UPLOAD": tier["upload"],
    }
    assert _rate_env(_env(records[stack], "worker")) == {}


def test_a_stack_sets_its_own_limits_on_the_api_and_its_canary(record_of: RecordOf) -> None:
    record = record_of(
        "prod",
        overrides={"visionrag:workloads": {"rateLimits": LIMITS, "canary": {"image": CANARY_IMAGE, "weight": 10}}},
    )
    expected = {
        "RATE_LIMIT_PER_MINUTE": "1200",
        "RATE_LIMIT_SEARCH": "5/second;200/minute",
        "RATE_LIMIT_CHAT": "30/minute",
        "RATE_LIMIT_UPLOAD": "100/hour",
    }
    assert _rate_env(_env(record, "api")) == expected
    assert _rate_env(_env(record, "api-canary")) == expected


def test_one_limit_can_be_overridden_alone(record_of: RecordOf) -> None:
    record = record_of("staging", overrides={"visionrag:workloads": {"rateLimits": {"chat": "5/minute"}}})
    env = _rate_env(_env(record, "api"))
    assert env["RATE_LIMIT_CHAT"] == "5/minute"
    assert env["RATE_LIMIT_SEARCH"] == TIER_DEFAULTS["staging"]["workloads"]["rateLimits"]["search"]


@pytest.mark.parametrize(
    ("limits", "key", "fragment"),
    [
        ({"search": "60/minutes"}, "workloads.rateLimits.search", "'60/minutes' is not a rate limit"),
        ({"upload": "0/minute"}, "workloads.rateLimits.upload", "count 1-"),
        ({"perIpPerMinute": 0}, "workloads.rateLimits.perIpPerMinute", "greater than or equal to 1"),
        ({"perIpPerMinute": 10**6}, "workloads.rateLimits.perIpPerMinute", "less than or equal to 100000"),
        ({"enabled": False}, "workloads.rateLimits.enabled", "unknown key"),
    ],
)
def test_bad_limits_are_config_errors_before_the_engine_starts(
    monkeypatch: pytest.MonkeyPatch, limits: dict[str, Any], key: str, fragment: str
) -> None:
    def spy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine started although the config is invalid")

    monkeypatch.setattr(offline, "_run", spy)
    with pytest.raises(ConfigError) as exc:
        run_stack("staging", overrides={"visionrag:workloads": {"rateLimits": limits}})
    problems = dict(exc.value.problems)
    assert key in problems, exc.value
    assert fragment in problems[key]
