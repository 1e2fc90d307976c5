"""ElastiCache settings: node type and the failover layout."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from stacks.config.base import StrictModel


class CacheConfig(StrictModel):
    engine_version: str = "8.0"
    node_type: str = "cache.t4g.small"
    num_cache_clusters: int = Field(ge=1, le=6)
    multi_az: bool

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
