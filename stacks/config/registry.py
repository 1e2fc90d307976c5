"""The shared registry (docs/delivery.md, "Registry model"): whether this stack owns it, where it is, who may pull
from it, and how its lifecycle keeps each stage's rollback window. Bounds are infra/registry.py's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from infra.naming import REGION
from infra.registry import (
    ACCOUNT_ID,
    KEEP_BUILDS,
    KEEP_RELEASES,
    RELEASE_STAGES,
    UNTAGGED_EXPIRY_DAYS,
    check_keep_releases,
    check_pull_account_ids,
    registry_host,
    repository_name,
)
from stacks.config.base import StrictModel

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig

# The repository each project workload runs from (the snapshot CronJob runs app/ops from the worker image; the
# canary is a second api Deployment).
IMAGE_OF_WORKLOAD: dict[str, str] = {
    "api": "api",
    "worker": "worker",
    "embedder": "embedder",
    "frontend": "frontend",
    "snapshots": "worker",
    "canary": "api",
}


class RegistryConfig(StrictModel):
    # The one stack that creates the repositories (Pulumi.dev.yaml: CI pushes before any deploy).
    owner: bool = False
    # Where the registry lives: every project image reference must point here. `region` defaults to the stack's.
    account_id: str
    region: str | None = None
    # Tier accounts the owner lets pull (repository policy); read by the owner only.
    pull_account_ids: list[str] = Field(default_factory=list)
    # Per stage: the newest releases kept (the rollback window), and the newest CI builds kept regardless.
    keep_releases: dict[str, int] = Field(default_factory=lambda: {"dev": 10, "staging": 10, "prod": 20})
    keep_builds: int = Field(default=30, ge=KEEP_BUILDS[0], le=KEEP_BUILDS[1])
    untagged_expiry_days: int = Field(default=7, ge=UNTAGGED_EXPIRY_DAYS[0], le=UNTAGGED_EXPIRY_DAYS[1])

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        if not ACCOUNT_ID.match(v):
            raise ValueError(f"{v!r} is not a 12-digit AWS account id (quote it in YAML)")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not REGION.match(v):
            raise ValueError(f"{v!r} is not an AWS region name (like 'us-east-1')")
        return v

    @field_validator("pull_account_ids")
    @classmethod
    def _pullers(cls, v: list[str]) -> list[str]:
        try:
            check_pull_account_ids(v)
        except ValueError as e:
            raise ValueError(str(e).removeprefix("pull_account_ids: ")) from None
        return v

    @field_validator("keep_releases")
    @classmethod
    def _windows(cls, v: dict[str, int]) -> dict[str, int]:
        try:
            check_keep_releases(v)
        except ValueError as e:
            lo, hi = KEEP_RELEASES
            raise ValueError(
                f"{str(e).removeprefix('keep_releases: ')} (allowed: {', '.join(RELEASE_STAGES)} each "
                f"{lo}-{hi}, dev <= staging <= prod)"
            ) from None
        return v

    @model_validator(mode="after")
    def _owner_only(self) -> RegistryConfig:
        if self.pull_account_ids and not self.owner:
            raise ValueError("pullAccountIds: only the owner stack (owner: true) grants pulls; remove it here")
        if self.account_id in self.pull_account_ids:
            raise ValueError(
                f"pullAccountIds: {self.account_id} is the registry's own account (same-account pulls need IAM only)"
            )
        return self


def registry_problem(cfg: StackConfig) -> str | None:
    """The first way `cfg` breaks the registry model (a "<key>: <why>" sentence), or None."""
    rc = cfg.registry
    region = rc.region or cfg.region
    if rc.owner and region != cfg.region:
        return (
            f"registry.region: {region!r} differs from the stack's region {cfg.region!r}; the owner creates the "
            "repositories in its own region"
        )
    host = registry_host(rc.account_id, region)
    for workload, image in IMAGE_OF_WORKLOAD.items():
        spec = getattr(cfg.workloads, workload)
        if spec is None:
            continue
        repo = f"{host}/{repository_name(cfg.name_prefix, image)}"
        ref: str = spec.image
        if not (ref.startswith(f"{repo}:") or ref.startswith(f"{repo}@")):
            return (
                f"workloads.{workload}.image: {ref!r} is not in the shared registry; allowed: "
                f"{repo}:<tag> or {repo}@sha256:<digest> (from registry.accountId, registry.region, namePrefix)"
            )
    return None


# Where a stack's own AWS account shows in its config, most authoritative first: the role CI deploys with lives in
# the account the stack deploys to (its ARN names it), as do the preview role and the CodeConnections connection.
ACCOUNT_SOURCES: tuple[tuple[str, str], ...] = (
    ("cluster.deployRoleArn", "cluster.deploy_role_arn"),
    ("cluster.previewRoleArn", "cluster.preview_role_arn"),
    ("delivery.codeConnectionArn", "delivery.code_connection_arn"),
)


def stack_account(cfg: StackConfig) -> tuple[str, str] | None:
    """(account id, the config key it was read from), or None where the config names no ARN of its own (a
    personal dev stack deploys wherever its caller is)."""
    for key, attr in ACCOUNT_SOURCES:
        section, field = attr.split(".")
        arn = getattr(getattr(cfg, section), field)
        if arn:
            return str(arn).split(":")[4], key
    return None


def pull_problem(account: str, source: str, stack: str, owner_stack: str, owner: StackConfig) -> str | None:
    """Why stack `stack`, deploying to `account` (read from `source`), could not pull from the registry that
    `owner_stack` owns (a "<key>: <why>" sentence), or None: same account (IAM alone decides), or listed in the
    owner's `registry.pullAccountIds` (the repository policy grants it)."""
    rc = owner.registry
    if account == rc.account_id or account in rc.pull_account_ids:
        return None
    return (
        f"registry.pullAccountIds: Pulumi.{owner_stack}.yaml (the registry owner) does not list {account}, the account "
        f"stack {stack!r} deploys to ({source}); the repository policy would refuse its nodes' pulls. Allowed: add "
        f"'{account}' to it (then `up` {owner_stack} before {stack})"
    )
