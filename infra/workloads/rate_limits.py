"""The api's rate limits as stack settings: the pod environment that sets them, and the range a stack may choose.

The app owns the limits and their meaning (app/api/ratelimit.py, app/api/settings.py RATE_LIMIT_*): a general
per-client-IP budget per minute on every protected route, and per-identity budgets for search, chat and upload in
the `limits` library's syntax ("60/minute", "10/second;500/hour"). A stack may choose the numbers, within sane
bounds, but not turn limiting off (RATE_LIMIT_ENABLED stays the app's default, true) nor where it is counted.
stacks/config/workloads.py validates `workloads.rateLimits` with `check_limit` and the bounds below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The subset of the `limits` syntax a stack may write: "<count>/<unit>" items joined by ';'. Every such string
# parses with limits.parse_many, the app's own check (tests/infra/workloads/test_rate_limits.py proves it).
LIMIT_UNITS = ("second", "minute", "hour", "day")
MAX_COUNT = 1_000_000  # per item: above it a limit limits nothing (and a typo'd extra digit is likelier)
MAX_PER_IP_PER_MINUTE = 100_000
_ITEM = re.compile(rf"^(?P<count>[1-9][0-9]*)/(?P<unit>{'|'.join(LIMIT_UNITS)})$")


def check_limit(value: str) -> None:
    """ValueError unless `value` is "<count>/<unit>[;<count>/<unit>...]", each unit once, each count in range."""
    items = value.split(";")
    seen: set[str] = set()
    for item in items:
        m = _ITEM.match(item)
        if m is None or int(m["count"]) > MAX_COUNT or m["unit"] in seen:
            raise ValueError(
                f"{value!r} is not a rate limit; write '<count>/<unit>' items joined by ';' (like "
                f"'60/minute' or '10/second;500/hour'), each unit once, count 1-{MAX_COUNT}, unit one of "
                f"{', '.join(LIMIT_UNITS)}"
            )
        seen.add(m["unit"])


@dataclass(frozen=True, kw_only=True)
class ApiRateLimits:
    per_ip_per_minute: int  # RATE_LIMIT_PER_MINUTE: every protected route, per client IP
    search: str  # RATE_LIMIT_SEARCH, per identity
    chat: str  # RATE_LIMIT_CHAT, per identity
    upload: str  # RATE_LIMIT_UPLOAD, per identity

    def __post_init__(self) -> None:
        if not 1 <= self.per_ip_per_minute <= MAX_PER_IP_PER_MINUTE:
            raise ValueError(
                f"per_ip_per_minute: {self.per_ip_per_minute} must be between 1 and {MAX_PER_IP_PER_MINUTE}"
            )
        for name in ("search", "chat", "upload"):
            try:
                check_limit(getattr(self, name))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None

    def env(self) -> dict[str, str]:
        """The api container's environment for these limits (names are app/api/settings.py fields)."""
        return {
            "RATE_LIMIT_PER_MINUTE": str(self.per_ip_per_minute),
            "RATE_LIMIT_SEARCH": self.search,
            "RATE_LIMIT_CHAT": self.chat,
            "RATE_LIMIT_UPLOAD": self.upload,
        }
