"""Network settings: the VPC, its AZ spread and NAT layout."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from infra.network import INTERFACE_ENDPOINTS, NatLayout
from stacks.config.base import StrictModel, log_retention


class NetworkConfig(StrictModel):
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = Field(ge=2, le=3)
    # "single": one NAT gateway shared by every private subnet (dev: cheap, one AZ's failure cuts egress).
    # "perAz": one per AZ so an AZ outage never takes egress from the others (staging/prod).
    nat_gateways: NatLayout
    flow_log_retention_days: int
    # The private AWS API endpoints to create (infra/network.py INTERFACE_ENDPOINTS; default all). Each costs
    # $0.01 per AZ-hour; a service left out is reached through the NAT gateway instead (tiers.py says who does).
    interface_endpoints: list[str] = Field(default_factory=lambda: list(INTERFACE_ENDPOINTS))

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        allowed = INTERFACE_ENDPOINTS
        if any(s not in allowed for s in v) or len(set(v)) != len(v):
            raise ValueError(f"{v} must list distinct services; allowed: {', '.join(allowed)}")
        return v

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        return log_retention(v)

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
