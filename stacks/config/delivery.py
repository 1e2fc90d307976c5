"""Delivery settings: the in-VPC GitHub Actions runner that deploys the stack (infra/ci_runners.py)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from infra.ci_runners import BUILD_TIMEOUT_MINUTES, CODE_CONNECTION_ARN, RUNNER_COMPUTE_TYPES, check_github_repository
from stacks.config.base import StrictModel


class DeliveryConfig(StrictModel):
    # A CodeBuild-hosted runner in the private subnets. Required wherever the cluster endpoint is private (the
    # tier floor in stack.py); optional in dev, whose endpoint may be public behind an allow-list.
    runner: bool
    github_repository: str | None = None  # "owner/name": the repository whose deploy/preview jobs it runs
    # CodeConnections connection to GitHub, approved once by a person (docs/runbooks/bootstrap-new-account.md).
    code_connection_arn: str | None = None
    runner_compute_type: str = "BUILD_GENERAL1_SMALL"
    # The prod deploy job (apply, verify, canary bake) is the longest; CodeBuild stops a build past this.
    runner_timeout_minutes: int = Field(default=150, ge=BUILD_TIMEOUT_MINUTES[0], le=BUILD_TIMEOUT_MINUTES[1])

    _repository = field_validator("github_repository")(check_github_repository)

    @field_validator("code_connection_arn")
    @classmethod
    def _connection(cls, v: str | None) -> str | None:
        if v is not None and not CODE_CONNECTION_ARN.match(v):
            raise ValueError(
                f"{v!r} is not a CodeConnections connection ARN "
                "(arn:aws:codeconnections:<region>:<account>:connection/<uuid>)"
            )
        return v

    @field_validator("runner_compute_type")
    @classmethod
    def _compute(cls, v: str) -> str:
        if v not in RUNNER_COMPUTE_TYPES:
            raise ValueError(f"{v!r} is not a runner compute type; allowed: {', '.join(RUNNER_COMPUTE_TYPES)}")
        return v

    @model_validator(mode="after")
    def _runner_needs_source(self) -> DeliveryConfig:
        if self.runner:
            missing = [
                k
                for k, v in (
                    ("githubRepository", self.github_repository),
                    ("codeConnectionArn", self.code_connection_arn),
                )
                if not v
            ]
            if missing:
                raise ValueError(f"{missing[0]}: required when runner is true (got nothing)")
        return self
