"""ElastiCache settings: node type and the failover layout."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.config.base import StrictModel


class CacheConfig(StrictModel):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: str = Field(default="8.0", pattern=r"^\d+\.\d+$")
    node_type: str = "cache.t4g.small"
    num_cache_clusters: int = Field(ge=1, le=6)
    multi_az: bool
    # Daily snapshots kept; 0 disables them (the queue and rate-limit state are rebuildable, jobs are not).
    snapshot_retention_days: int = Field(default=1, ge=0, le=35)
    slow_log_retention_days: int = Field(default=30, ge=1)

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, v: str) -> str:
        if not v.startswith("cache."):
            raise ValueError(f"{v!r} is not an ElastiCache node type (expected 'cache.<family>.<size>')")
        return v

    @model_validator(mode="after")
    def _failover(self) -> CacheConfig:
        if self.multi_az and self.num_cache_clusters < 2:
            raise ValueError(f"multiAz needs numCacheClusters >= 2 (got {self.num_cache_clusters})")
        return self
