"""Network settings: the VPC, its AZ spread and NAT layout."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from infra.naming import LOG_RETENTION_DAYS
from stacks.config.base import StrictModel


class NetworkConfig(StrictModel):
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = Field(ge=2, le=3)
    # "single": one NAT gateway shared by every private subnet (dev: cheap, one AZ's failure cuts egress).
    # "perAz": one per AZ so an AZ outage never takes egress from the others (staging/prod).
    nat_gateways: Literal["single", "perAz"]
    flow_log_retention_days: int = Field(ge=1)

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise ValueError(f"{v} is not a CloudWatch Logs retention; allowed: {sorted(LOG_RETENTION_DAYS)}")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.ip_network(v, strict=True)
        except ValueError as err:
            raise ValueError(f"{v!r} is not a network address ({err})") from None
        # AWS caps a VPC's primary block at /16; below /20 the private subnets (one VPC address per pod) run out.
        if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"{v!r} must be a private IPv4 network between /16 and /20")
        return v
