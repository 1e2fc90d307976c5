"""`workloads.restoreDrill`: the monthly restore drill CronJob (infra/workloads/restore_drill.py, app/ops/drill.py).

Tier defaults (stacks/config/tiers.py): on in prod, off in dev and staging (a stack may turn it on). The bounds
and the schedule check are the component's (one owner); a bad value is refused here, naming the key.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.workloads.restore_drill import DEFAULT_SCHEDULE, QUERIES, TOP_K, RestoreDrillSettings
from infra.workloads.snapshots import check_schedule
from stacks.config.base import StrictModel


class RestoreDrillConfig(StrictModel):
    enabled: bool  # tier default
    # 5-field cron, UTC. Default: the 1st of each month, 04:41, after the daily snapshot (snapshotSchedule).
    schedule: str = DEFAULT_SCHEDULE
    queries: int = Field(default=20, ge=QUERIES[0], le=QUERIES[1])  # sample queries compared per drill
    top_k: int = Field(default=10, ge=TOP_K[0], le=TOP_K[1])
    min_overlap: float = Field(default=0.9, ge=0.0, le=1.0)  # pass: mean top-k overlap live vs restored
    max_drift: float = Field(default=0.05, ge=0.0, le=1.0)  # pass: |live - restored| / max point count

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        try:
            return check_schedule(v, "schedule")
        except ValueError:
            raise ValueError(f"{v!r} is not a 5-field cron expression (minute hour day month weekday)") from None

    def settings(self) -> RestoreDrillSettings | None:
        """What the Workloads component takes; None when the drill is off."""
        if not self.enabled:
            return None
        return RestoreDrillSettings(
            schedule=self.schedule,
            queries=self.queries,
            top_k=self.top_k,
            min_overlap=self.min_overlap,
            max_drift=self.max_drift,
        )
