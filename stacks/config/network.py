"""Network settings: the VPC, its AZ spread and NAT layout."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from stacks.config.base import StrictModel


class NetworkConfig(StrictModel):
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = Field(ge=2, le=3)
    # "single": one NAT gateway shared by every private subnet (dev: cheap, one AZ's failure cuts egress).
    # "perAz": one per AZ so an AZ outage never takes egress from the others (staging/prod).
    nat_gateways: Literal["single", "perAz"]
    flow_log_retention_days: int = Field(ge=1)

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if net.version != 4 or not net.is_private or net.prefixlen > 20:
            raise ValueError(f"{v!r} must be a private IPv4 network of /20 or larger")
        return v
