"""StackConfig: the whole validated configuration of one stack, and the floors each tier may not go below."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.config.base import StrictModel
from stacks.config.cache import CacheConfig
from stacks.config.cluster import ClusterConfig
from stacks.config.edge import EdgeConfig
from stacks.config.network import NetworkConfig
from stacks.config.observability import ObservabilityConfig
from stacks.config.registry import RegistryConfig
from stacks.config.storage import StorageConfig
from stacks.config.workloads import WorkloadsConfig

Tier = Literal["dev", "staging", "prod"]
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class StackConfig(StrictModel):
    tier: Tier
    # Prefix of every physical name; with the tier it makes names deterministic across re-creates.
    name_prefix: str = Field(default="visionrag", pattern=r"^[a-z][a-z0-9-]{1,19}$")
    region: str
    replica_region: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig
    cluster: ClusterConfig
    storage: StorageConfig
    edge: EdgeConfig
    cache: CacheConfig
    registry: RegistryConfig
    observability: ObservabilityConfig
    workloads: WorkloadsConfig

    @field_validator("region", "replica_region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not _REGION.match(v):
            raise ValueError(f"{v!r} is not an AWS region name (like 'us-east-1')")
        return v

    # The tier floors. Tier defaults (tiers.py) say where a stack starts; these say what no override may
    # weaken. They branch on the tier, which is config, never on the stack's name.
    @model_validator(mode="after")
    def _floors(self) -> StackConfig:
        hardened = self.tier != "dev"
        if hardened and self.cluster.endpoint_public_access:
            raise ValueError(f"cluster.endpointPublicAccess must be false in tier '{self.tier}' (got true)")
        if hardened and not self.workloads.require_digests:
            raise ValueError(f"workloads.requireDigests must be true in tier '{self.tier}' (got false)")
        if hardened and "*" in self.workloads.allowed_origins:
            raise ValueError(
                f"workloads.allowedOrigins may not contain '*' in tier '{self.tier}'; list explicit origins"
            )
        if hardened and not self.edge.deletion_protection:
            raise ValueError(f"edge.deletionProtection must be true in tier '{self.tier}' (got false)")
        if hardened and self.storage.audit_object_lock == "off":
            raise ValueError(
                f"storage.auditObjectLock must be 'governance' or 'compliance' in tier '{self.tier}' (got 'off')"
            )
        if self.tier == "prod":
            if self.storage.audit_object_lock != "compliance":
                raise ValueError(
                    f"storage.auditObjectLock must be 'compliance' in prod (got {self.storage.audit_object_lock!r})"
                )
            if not self.storage.replication:
                raise ValueError("storage.replication must be true in prod (got false)")
            if self.cache.num_cache_clusters < 2 or not self.cache.multi_az:
                raise ValueError("cache must be multiAz with numCacheClusters >= 2 in prod")
        if self.storage.replication:
            if self.replica_region is None:
                raise ValueError("replicaRegion is required when storage.replication is true")
            if self.replica_region == self.region:
                raise ValueError(f"replicaRegion must differ from region ({self.region!r})")
        return self

    def physical_name(self, *parts: str) -> str:
        """Deterministic physical name: '<prefix>-<tier>-<parts...>'."""
        return "-".join((self.name_prefix, self.tier, *parts))
