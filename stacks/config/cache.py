"""ElastiCache settings: engine, node type and the failover layout.

Engine: Valkey by default (docs/platform.md, "Cache engine"): the same protocol as Redis OSS, node-based prices
20% lower, and the server the tests and `make local` run (app/dev_servers.py); "redis" stays selectable.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from infra.cache import ENGINE_VERSIONS, NUM_CACHE_CLUSTERS, SNAPSHOT_RETENTION_DAYS, CacheEngine
from stacks.config.base import StrictModel, log_retention


class CacheConfig(StrictModel):
    engine: CacheEngine = "valkey"
    engine_version: str = Field(default="8.0", pattern=r"^\d+\.\d+$")
    node_type: str = "cache.t4g.small"
    num_cache_clusters: int = Field(ge=NUM_CACHE_CLUSTERS[0], le=NUM_CACHE_CLUSTERS[1])
    multi_az: bool
    # Daily snapshots kept; 0 disables them (the queue and rate-limit state are rebuildable, jobs are not).
    snapshot_retention_days: int = Field(default=1, ge=SNAPSHOT_RETENTION_DAYS[0], le=SNAPSHOT_RETENTION_DAYS[-1])
    slow_log_retention_days: int = 30

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, v: str) -> str:
        if not v.startswith("cache."):
            raise ValueError(f"{v!r} is not an ElastiCache node type (expected 'cache.<family>.<size>')")
        return v

    @field_validator("slow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        return log_retention(v)

    @model_validator(mode="after")
    def _version(self) -> CacheConfig:
        if self.engine_version not in ENGINE_VERSIONS[self.engine]:
            raise ValueError(
                f"engineVersion: {self.engine_version!r} is not an ElastiCache {self.engine} version; "
                f"allowed: {', '.join(ENGINE_VERSIONS[self.engine])}"
            )
        return self

    @model_validator(mode="after")
    def _failover(self) -> CacheConfig:
        if self.multi_az and self.num_cache_clusters < 2:
            raise ValueError(f"multiAz needs numCacheClusters >= 2 (got {self.num_cache_clusters})")
        return self
