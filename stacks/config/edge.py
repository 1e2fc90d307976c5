"""Edge settings: domain, TLS certificate zone, WAF rate limit, ALB deletion protection."""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.edge import DNS_LABEL, HOST
from infra.waf import RATE_LIMIT_BOUNDS
from stacks.config.base import StrictModel, log_retention


class EdgeConfig(StrictModel):
    domain: str
    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{1,31}$")
    # Requests per client IP per 5-minute window before the WAF rate rule blocks it.
    waf_rate_limit: int = Field(ge=RATE_LIMIT_BOUNDS[0], le=RATE_LIMIT_BOUNDS[1])
    deletion_protection: bool
    # Under the access-logs bucket; never ending in '/' (infra/edge.py: the ALB refuses it).
    access_log_prefix: str = Field(default="alb", pattern=r"^[a-z0-9]([a-z0-9/-]{0,61}[a-z0-9-])?$")
    waf_log_retention_days: int = 90
    # Host-based routing: https://<apiSubdomain>.<domain> -> api, https://<domain> -> frontend.
    api_subdomain: str = Field(default="api", pattern=DNS_LABEL.pattern)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not HOST.match(v):
            raise ValueError(f"{v!r} is not a valid lower-case DNS name")
        return v

    @field_validator("waf_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        return log_retention(v)
