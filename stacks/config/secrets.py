"""Secrets Manager settings: how long a deleted secret stays restorable."""

from __future__ import annotations

from pydantic import field_validator

from infra.naming import SECRET_RECOVERY_WINDOW_DAYS
from stacks.config.base import StrictModel


class SecretsConfig(StrictModel):
    # 7-30 days in which a deleted secret can be restored, or 0: deleted at once (ForceDeleteWithoutRecovery), so a
    # destroyed stack can be re-created immediately (a secret pending deletion keeps its name reserved).
    recovery_window_days: int

    @field_validator("recovery_window_days")
    @classmethod
    def _window(cls, v: int) -> int:
        if v not in SECRET_RECOVERY_WINDOW_DAYS:
            raise ValueError(f"{v!r} is not a Secrets Manager recovery window; allowed: 0 (no recovery) or 7-30")
        return v
