"""Alerting and cost settings: where alarms go and the monthly budget."""

from __future__ import annotations

from pydantic import Field

from stacks.config.base import StrictModel


class ObservabilityConfig(StrictModel):
    alarm_emails: list[str] = Field(default_factory=list)
    monthly_budget_usd: float = Field(gt=0)
    alb_5xx_rate_percent: float = Field(default=5.0, gt=0, le=100)
