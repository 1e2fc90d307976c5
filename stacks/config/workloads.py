"""Kubernetes workload settings: images, replicas, resources, the snapshot schedule and the canary."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.config.base import StrictModel

# registry/repository[:tag][@sha256:<64 hex>]; the tag part is refused when digests are required.
IMAGE_RE = re.compile(
    r"^(?P<repo>[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
WORKLOADS = ("api", "worker", "embedder", "qdrant", "frontend", "snapshots")


def check_image(ref: str, *, require_digest: bool) -> str:
    m = IMAGE_RE.match(ref)
    if not m:
        raise ValueError(f"{ref!r} is not a valid image reference")
    if m["tag"] == "latest":
        raise ValueError(f"{ref!r} uses ':latest'; pin a version tag or a digest")
    if require_digest and not m["digest"]:
        raise ValueError(f"{ref!r} is not pinned by digest; this tier needs '<repo>@sha256:<64 hex>'")
    if not m["digest"] and not m["tag"]:
        raise ValueError(f"{ref!r} has neither a tag nor a digest")
    return ref


class Resources(StrictModel):
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


class WorkloadConfig(StrictModel):
    image: str
    replicas: int = Field(ge=0)
    resources: Resources
    max_replicas: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _hpa(self) -> WorkloadConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) must be >= replicas ({self.replicas})")
        return self


class CanaryConfig(StrictModel):
    image: str
    weight: int = Field(ge=0, le=100)


class WorkloadsConfig(StrictModel):
    require_digests: bool
    api: WorkloadConfig
    worker: WorkloadConfig
    embedder: WorkloadConfig
    qdrant: WorkloadConfig
    frontend: WorkloadConfig | None = None
    snapshots: WorkloadConfig
    qdrant_replication_factor: int = Field(default=1, ge=1)
    qdrant_storage_gib: int = Field(default=50, ge=1)
    snapshot_schedule: str = "17 3 * * *"
    snapshot_retention: int = Field(default=7, ge=1)
    api_command: list[str] = Field(
        default_factory=lambda: ["gunicorn", "app.api.main:create_app()", "-c", "gunicorn.conf.py"]
    )
    allowed_origins: list[str] = Field(default_factory=list)
    canary: CanaryConfig | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for o in v:
            if not re.match(r"^https?://[^*\s/]+$", o) and o != "*":
                raise ValueError(f"{o!r} is not an origin (scheme://host[:port], no path)")
        return v

    @model_validator(mode="after")
    def _images(self) -> WorkloadsConfig:
        for name in WORKLOADS:
            w = getattr(self, name)
            if w is not None:
                try:
                    check_image(w.image, require_digest=self.require_digests)
                except ValueError as e:
                    raise ValueError(f"{name}.image: {e}") from None
        if self.canary is not None:
            try:
                check_image(self.canary.image, require_digest=self.require_digests)
            except ValueError as e:
                raise ValueError(f"canary.image: {e}") from None
        if self.qdrant_replication_factor > max(self.qdrant.replicas, 1):
            raise ValueError(
                f"qdrantReplicationFactor ({self.qdrant_replication_factor}) exceeds qdrant.replicas "
                f"({self.qdrant.replicas})"
            )
        return self
