"""StackConfig: the whole validated configuration of one stack, and the floors each tier may not go below."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.bucket_names import too_long
from infra.identity import DOMAIN_RESERVED_WORDS
from infra.naming import REGION, S3_BUCKET_NAME_MAX
from stacks.config.base import StrictModel
from stacks.config.cache import CacheConfig
from stacks.config.cluster import ClusterConfig
from stacks.config.delivery import DeliveryConfig
from stacks.config.edge import EdgeConfig
from stacks.config.identity import IdentityConfig
from stacks.config.network import NetworkConfig
from stacks.config.observability import ObservabilityConfig
from stacks.config.registry import RegistryConfig, registry_problem
from stacks.config.secrets import SecretsConfig
from stacks.config.storage import StorageConfig
from stacks.config.workloads import WorkloadsConfig

Tier = Literal["dev", "staging", "prod"]


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
    identity: IdentityConfig
    secrets: SecretsConfig
    delivery: DeliveryConfig
    workloads: WorkloadsConfig

    @field_validator("region", "replica_region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not REGION.match(v):
            raise ValueError(f"{v!r} is not an AWS region name (like 'us-east-1')")
        return v

    # The tier floors. Tier defaults (tiers.py) say where a stack starts; these say what no override may
    # weaken. They branch on the tier, which is config, never on the stack's name.
    @model_validator(mode="after")
    def _floors(self) -> StackConfig:
        hardened = self.tier != "dev"
        if hardened and self.cluster.endpoint_public_access:
            raise ValueError(f"cluster.endpointPublicAccess must be false in tier '{self.tier}' (got true)")
        # Spot nodes can be reclaimed at two minutes' notice: fine for dev, not for the tiers that serve users.
        for key, pool in (("systemNodes", self.cluster.system_nodes), ("gpuNodes", self.cluster.gpu_nodes)):
            if hardened and pool.capacity_type != "ON_DEMAND":
                raise ValueError(
                    f"cluster.{key}.capacityType must be 'ON_DEMAND' in tier '{self.tier}' "
                    f"(got {pool.capacity_type!r}; Spot capacity is for dev only)"
                )
        if hardened and not self.workloads.require_digests:
            raise ValueError(f"workloads.requireDigests must be true in tier '{self.tier}' (got false)")
        if hardened and "*" in self.workloads.allowed_origins:
            raise ValueError(
                f"workloads.allowedOrigins may not contain '*' in tier '{self.tier}'; list explicit origins"
            )
        # A private endpoint is only reachable from inside the VPC: CI deploys through the in-VPC runner, with
        # roles named in config (a plan made by the preview role must be the plan the deploy role applies).
        if hardened and not self.delivery.runner:
            raise ValueError(f"delivery.runner must be true in tier '{self.tier}' (the cluster endpoint is private)")
        if hardened and not self.cluster.deploy_role_arn:
            raise ValueError(f"cluster.deployRoleArn is required in tier '{self.tier}' (the role CI deploys with)")
        if hardened and not self.cluster.preview_role_arn:
            raise ValueError(f"cluster.previewRoleArn is required in tier '{self.tier}' (the role CI previews with)")
        reserved = [w for w in DOMAIN_RESERVED_WORDS if w in self.name_prefix]
        if self.workloads.auth is None and reserved:
            # It starts the Cognito hosted-domain prefix, which may not contain these words.
            raise ValueError(f"namePrefix may not contain {reserved} (got {self.name_prefix!r}): Cognito refuses it")
        if hardened and self.workloads.auth is None and self.identity.mfa != "on":
            raise ValueError(f"identity.mfa must be 'on' in tier '{self.tier}' (got {self.identity.mfa!r})")
        if hardened and self.workloads.auth is None and not self.identity.deletion_protection:
            raise ValueError(f"identity.deletionProtection must be true in tier '{self.tier}' (got false)")
        # Uploads are scanned wherever users upload (infra/workloads/clamav.py; the api refuses what it cannot scan).
        if hardened and self.workloads.clamav is None:
            raise ValueError(
                f"workloads.clamav is required in tier '{self.tier}' (got none): uploads must be malware-scanned"
            )
        if self.tier == "prod" and self.workloads.clamav is not None and self.workloads.clamav.replicas < 2:
            raise ValueError(f"workloads.clamav.replicas must be >= 2 in prod (got {self.workloads.clamav.replicas})")
        # Only images CI signed on main run where users are (infra/workloads/image_admission.py).
        if hardened and not self.workloads.image_admission.enabled:
            raise ValueError(f"workloads.imageAdmission.enabled must be true in tier '{self.tier}' (got false)")
        admission = self.workloads.image_admission
        if self.tier == "prod" and admission.replicas < 2:
            raise ValueError(f"workloads.imageAdmission.replicas must be >= 2 in prod (got {admission.replicas})")
        if self.admission_repository() is None and self.workloads.image_admission.enabled:
            raise ValueError(
                "workloads.imageAdmission.githubRepository: required when imageAdmission is enabled and "
                "delivery.githubRepository is unset ('owner/name' of the repository whose CI signs the images)"
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

    @model_validator(mode="after")
    def _images_in_shared_registry(self) -> StackConfig:
        # One shared registry (docs/delivery.md, "Registry model"): every project image comes from it.
        problem = registry_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def admission_repository(self) -> str | None:
        """The repository whose CI signs the images: imageAdmission's own, else the one delivery deploys from."""
        return self.workloads.image_admission.github_repository or self.delivery.github_repository

    @model_validator(mode="after")
    def _bucket_names_fit(self) -> StackConfig:
        # Bucket names carry the 12-digit account id and the region (infra/bucket_names.py): refuse here, naming
        # the key, what S3 would refuse half-way through a deploy.
        replica = self.replica_region if self.storage.replication else None
        long_names = too_long(self.physical_name(), self.region, replica)
        if long_names:
            longest = max(long_names, key=len)
            raise ValueError(
                f"namePrefix: {self.name_prefix!r} (tier {self.tier!r}, region {self.region!r}"
                f"{f', replicaRegion {replica!r}' if replica else ''}) makes bucket name {longest!r} "
                f"{len(longest)} characters; S3 allows at most {S3_BUCKET_NAME_MAX} "
                "(<namePrefix>-<tier>-<account id>-<region>-<purpose>): choose a shorter namePrefix"
            )
        return self

    def physical_name(self, *parts: str) -> str:
        """Deterministic physical name: '<prefix>-<tier>-<parts...>'."""
        return "-".join((self.name_prefix, self.tier, *parts))

    def resource_tags(self) -> dict[str, str]:
        """The tags on every AWS resource: project and tier (the budget filters on `tier`), then `tags` overrides."""
        return {"project": "visionrag", "tier": self.tier, **self.tags}
