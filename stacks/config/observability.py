"""Alerting and cost settings: where alarms go and the monthly budget."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from stacks.config.base import StrictModel

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")


class ObservabilityConfig(StrictModel):
    alarm_emails: list[str] = Field(default_factory=list)
    monthly_budget_usd: float = Field(gt=0)
    alb_5xx_rate_percent: float = Field(default=5.0, gt=0, le=100)
    cache_memory_percent: float = Field(default=80.0, gt=0, le=100)
    scrape_interval_seconds: int = Field(default=30, ge=10, le=300)

    @field_validator("alarm_emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for e in v:
            if not _EMAIL.match(e):
                raise ValueError(f"{e!r} is not an e-mail address")
        return v
