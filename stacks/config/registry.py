"""ECR settings: how many releases each repository keeps."""

from __future__ import annotations

from pydantic import Field

from infra.registry import KEEP_RELEASES
from stacks.config.base import StrictModel


class RegistryConfig(StrictModel):
    keep_releases: int = Field(default=30, ge=KEEP_RELEASES[0], le=KEEP_RELEASES[1])
    untagged_expiry_days: int = Field(default=7, ge=1)
