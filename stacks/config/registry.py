"""ECR settings: how many releases each repository keeps."""

from __future__ import annotations

from pydantic import Field

from stacks.config.base import StrictModel


class RegistryConfig(StrictModel):
    keep_releases: int = Field(default=30, ge=1, le=1000)
    untagged_expiry_days: int = Field(default=7, ge=1)
