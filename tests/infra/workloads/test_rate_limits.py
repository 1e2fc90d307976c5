"""infra/workloads/rate_limits.py: the rate-limit syntax a stack may write is one the app accepts, and the env the
api pod gets for it is the app's own settings."""

from __future__ import annotations

import pytest
from limits import parse_many

from app.api.settings import Settings
from infra.workloads.rate_limits import LIMIT_UNITS, MAX_COUNT, MAX_PER_IP_PER_MINUTE, ApiRateLimits, check_limit

GOOD = ["60/minute", "1/second", "10/second;500/hour", f"{MAX_COUNT}/day", "5/second;100/minute;1000/hour;9999/day"]
BAD = [
    "",
    "60",
    "60/minutes",  # the `limits` library would read it; one spelling per unit keeps configs comparable
    "0/minute",
    "-1/minute",
    "060/minute",
    f"{MAX_COUNT + 1}/day",
    "60 per minute",
    "60/minute;",
    "60/minute; 500/hour",
    "60/minute;70/minute",  # the same unit twice: which one holds?
    "60/2 minutes",
]


@pytest.mark.parametrize("value", GOOD)
def test_accepted_limits_parse_as_the_app_parses_them(value: str) -> None:
    check_limit(value)
    items = parse_many(value)
    assert [(i.amount, i.GRANULARITY.name) for i in items] == [
        (int(n), unit) for n, unit in (part.split("/") for part in value.split(";"))
    ]


@pytest.mark.parametrize("value", BAD)
def test_malformed_limits_are_refused_with_the_syntax(value: str) -> None:
    with pytest.raises(ValueError, match="is not a rate limit") as exc:
        check_limit(value)
    assert all(unit in str(exc.value) for unit in LIMIT_UNITS)


def test_env_names_are_the_api_settings_fields() -> None:
    env = ApiRateLimits(per_ip_per_minute=300, search="60/minute", chat="20/minute", upload="10/minute").env()
    assert env == {
        "RATE_LIMIT_PER_MINUTE": "300",
        "RATE_LIMIT_SEARCH": "60/minute",
        "RATE_LIMIT_CHAT": "20/minute",
        "RATE_LIMIT_UPLOAD": "10/minute",
    }
    assert {name.lower() for name in env} <= set(Settings.model_fields)
    # Limiting itself is not a stack knob: the app's default (on) always holds.
    assert "RATE_LIMIT_ENABLED" not in env


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"per_ip_per_minute": 0}, "per_ip_per_minute"),
        ({"per_ip_per_minute": MAX_PER_IP_PER_MINUTE + 1}, "per_ip_per_minute"),
        ({"chat": "20/fortnight"}, "chat"),
    ],
)
def test_args_refuse_out_of_range_values_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "per_ip_per_minute": 300,
        "search": "60/minute",
        "chat": "20/minute",
        "upload": "1/second",
    }
    with pytest.raises(ValueError, match=f"^{field}: "):
        ApiRateLimits(**{**base, **kwargs})  # type: ignore[arg-type]
