"""Edge settings: domain, TLS certificate zone, WAF rate limit, ALB deletion protection."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from stacks.config.base import StrictModel

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class EdgeConfig(StrictModel):
    domain: str
    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{1,31}$")
    # Requests per client IP per 5-minute window before the WAF rate rule blocks it.
    waf_rate_limit: int = Field(ge=100, le=2_000_000_000)
    deletion_protection: bool
    access_log_prefix: str = Field(default="alb", pattern=r"^[a-z0-9][a-z0-9/-]{0,62}$")
    waf_log_retention_days: int = Field(default=90, ge=1)
    # Host-based routing: https://<apiSubdomain>.<domain> -> api, https://<domain> -> frontend.
    api_subdomain: str = Field(default="api", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not _HOST.match(v):
            raise ValueError(f"{v!r} is not a valid lower-case DNS name")
        return v
