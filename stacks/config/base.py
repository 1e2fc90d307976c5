"""The base every stack-config model inherits: strict, camelCase in YAML, snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from infra.naming import LOG_RETENTION_DAYS


class StrictModel(BaseModel):
    # extra="forbid": a misspelled key in Pulumi.<stack>.yaml must fail loudly, not be silently ignored and leave
    # a secure default in place that the author believed they had changed (or the reverse).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


def log_retention(v: int) -> int:
    """A `*RetentionDays` key that becomes a CloudWatch log group's retention: refused here, not by the component
    after other resources are registered (the allowed values are infra/naming.py's, the component's own check)."""
    if v not in LOG_RETENTION_DAYS:
        raise ValueError(f"{v} is not a CloudWatch Logs retention; allowed: {sorted(LOG_RETENTION_DAYS)}")
    return v
