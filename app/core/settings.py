"""The settings every process shares: connection fields, secret files, the unsafe-outside-dev rule.

Each process has its own settings class beside it, built on `ConnectionSettings`:
`app/api/settings.py` (Settings), `app/worker/settings.py` (WorkerSettings, on `CollectionSettings`: the collection
layout), `app/ops/settings.py` (OpsSettings, on WorkerSettings);
the embedder's `app/embedder/settings.py` stands alone (its GPU image installs nothing else). The connection
fields below (Redis, S3, Qdrant, the embedder, logging, Sentry) are declared once, with one environment name each,
because one ConfigMap feeds every pod (infra/workloads).

Values come from init arguments, then the environment, then `.env`, then one file per field under
`$SETTINGS_SECRETS_DIR` (how Kubernetes Secrets are mounted). The rule for that folder, for every process:
unset or empty means no secret files; set to a path that is not a directory is a mis-mounted Secret and fails at
start-up naming it, instead of silently running on laptop defaults.

Outside `dev` the unsafe choices that are convenient on a laptop are refused, all at once, in one message:
`problems()` lists them and each process's class adds its own.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, TypeVar

from minio.credentials import IamAwsProvider
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

from app.core.telemetry import Sampling

Environment = Literal["dev", "staging", "prod"]
SECRETS_DIR_ENV = "SETTINGS_SECRETS_DIR"

# Values that mean "nobody filled this in": refused as secrets outside dev.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "replace-me",
        "replaceme",
        "placeholder",
        "secret",
        "password",
        "minioadmin",
        "admin",
        "xxx",
        "todo",
        "dummy",
        "test",
        "example",
    }
)

PLACEHOLDER_MARKERS = (
    "changeme",
    "change-me",
    "change_me",
    "replace-me",
    "replace_me",
    "placeholder",
    "your-",
    "your_",
    "<",
    "${",
    "xxxx",
)

# Never echoed in error messages (the secret files carry these).
SECRET_FIELDS = frozenset(
    {"s3_access_key", "s3_secret_key", "qdrant_api_key", "openai_api_key", "sentry_dsn", "redis_url"}
)


class SettingsError(ValueError):
    """The configuration cannot be used; the message names every offending key, value and what is allowed."""


def split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def is_placeholder(secret: SecretStr | None) -> bool:
    if secret is None:
        return True
    value = secret.get_secret_value().strip().lower()
    return value in PLACEHOLDER_SECRETS or any(marker in value for marker in PLACEHOLDER_MARKERS)


def secrets_dir() -> str | None:
    """The one reading of `$SETTINGS_SECRETS_DIR`: None when unset, the path when it is a directory, else an error."""
    path = os.environ.get(SECRETS_DIR_ENV)
    if not path:
        return None
    if not os.path.isdir(path):
        raise SettingsError(f"{SECRETS_DIR_ENV}={path!r} is not a directory (the mounted Secret files)")
    return path


class ConnectionSettings(BaseSettings):
    """Fields and checks shared by the API, the worker and the ops commands (same env names everywhere)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)
    # The ops commands that never touch the pages bucket turn this off: their S3 keys are not checked.
    uses_page_storage: ClassVar[bool] = True

    # --- deployment ---
    environment: Environment = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # Error tracking (unset: off).
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # Tracing (app/core/telemetry.py; the OpenTelemetry SDK's environment names). No endpoint: off.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "visionrag"
    otel_traces_sampler: Sampling = "parentbased_traceidratio"
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0, le=1)

    # --- redis ---
    redis_url: str = "redis://127.0.0.1:6379/0"

    # --- object storage (S3 / MinIO / SeaweedFS) ---
    s3_endpoint: str = "127.0.0.1:9000"
    # "static": S3_ACCESS_KEY/S3_SECRET_KEY. "iam": no keys in the pod at all; minio's IamAwsProvider takes
    # short-lived credentials from the web identity EKS injects (IRSA: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE),
    # falling back to the container/instance role.
    s3_auth: Literal["static", "iam"] = "static"
    # STS endpoint for the web-identity exchange in "iam" mode (the AWS SDKs' AWS_ENDPOINT_URL_STS): an STS
    # VPC endpoint without private DNS, or a local STS. Unset: the regional public STS endpoint.
    s3_sts_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("s3_sts_endpoint", "aws_endpoint_url_sts")
    )
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    s3_bucket_pages: str = "visionrag-pages"
    # The checklist's MINIO_* names are accepted as aliases (MINIO_SSE=auto means SSE-S3).
    s3_sse: Literal["none", "s3", "kms"] = Field(default="none", validation_alias=AliasChoices("s3_sse", "minio_sse"))
    s3_kms_key_id: str | None = Field(default=None, validation_alias=AliasChoices("s3_kms_key_id", "minio_kms_key_id"))
    s3_timeout_s: float = Field(default=5.0, gt=0)
    # The Object Lock audit bucket: the api's routes and every ops command append their events there
    # (app/core/audit.py). AUDIT_ACTOR names a process's identity (a pod: its ServiceAccount) in those events.
    s3_bucket_audit: str = "visionrag-audit"
    audit_actor: str | None = None

    # --- qdrant ---
    qdrant_url: str = ":memory:"
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "pages"
    qdrant_timeout_s: float = Field(default=10.0, gt=0)

    # --- embedder (ColPali service) ---
    embedder_url: str = "http://127.0.0.1:7000"
    embedder_timeout_s: float = Field(default=30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read at construction time (not class definition), so the pod's env decides.
        directory = secrets_dir()
        if directory is not None:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("s3_sse", mode="before")
    @classmethod
    def _sse(cls, value: object) -> object:
        return "s3" if isinstance(value, str) and value.lower() in {"auto", "aes256", "sse-s3"} else value

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        # minio wants host[:port]; accept a URL too so boto3-style values work.
        for prefix in ("https://", "http://"):
            if value.startswith(prefix):
                return value[len(prefix) :].rstrip("/")
        return value

    @model_validator(mode="after")
    def _usable(self) -> Any:
        problems = self.problems()
        if problems:
            raise ValueError(
                f"unsafe or incomplete settings for environment={self.environment!r}: " + "; ".join(problems)
            )
        return self

    def problems(self) -> list[str]:
        """Why these settings cannot be used. Subclasses extend the list (`super().problems()` first)."""
        problems: list[str] = []
        if self.s3_sse == "kms" and not self.s3_kms_key_id:
            problems.append("S3_KMS_KEY_ID is required when S3_SSE='kms'")
        if self.uses_page_storage:
            problems.extend(self.s3_auth_problems())
        if self.is_dev:
            return problems
        if self.s3_sse == "none":
            problems.append("S3_SSE='none' (allowed outside dev: 's3', 'kms')")
        for key, maybe in (("QDRANT_API_KEY", self.qdrant_api_key), ("SENTRY_DSN", self.sentry_dsn)):
            if maybe is not None and is_placeholder(maybe):
                problems.append(f"{key} is a placeholder (allowed: a real value or unset)")
        if self.qdrant_url.startswith(("http://", "https://")) and self.qdrant_api_key is None:
            problems.append("QDRANT_API_KEY is unset for a remote QDRANT_URL (allowed: the cluster's API key)")
        return problems

    def s3_auth_problems(self) -> list[str]:
        """Why the S3 credentials cannot be used: always the iam/static ambiguity, placeholders outside dev."""
        keys = (("S3_ACCESS_KEY", self.s3_access_key), ("S3_SECRET_KEY", self.s3_secret_key))
        if self.s3_auth == "iam":
            if any(secret.get_secret_value() for _, secret in keys):
                # minio would silently prefer the static keys over the role: refuse the ambiguity everywhere.
                return ["S3_ACCESS_KEY/S3_SECRET_KEY are set while S3_AUTH='iam' (allowed: unset with 'iam')"]
            return []
        if self.is_dev:
            return []
        return [
            f"{key} is empty or a placeholder (allowed: a real credential, or S3_AUTH='iam' without keys)"
            for key, secret in keys
            if is_placeholder(secret)
        ]

    def s3_credentials(self) -> dict[str, Any]:
        """PageStorage's credential arguments for the configured S3_AUTH mode.

        "iam": no keys; minio's IamAwsProvider signs with short-lived credentials from the web identity EKS
        injects (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, IRSA) or the container/instance role, refreshed
        before they expire. s3_auth_problems guarantees no static key is set alongside it.
        """
        if self.s3_auth == "iam":
            # Only the web-identity exchange goes to s3_sts_endpoint; IMDS/ECS fallbacks keep their fixed addresses.
            sts = self.s3_sts_endpoint if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") else None
            return {"access_key": "", "secret_key": "", "credentials": IamAwsProvider(custom_endpoint=sts)}
        return {
            "access_key": self.s3_access_key.get_secret_value(),
            "secret_key": self.s3_secret_key.get_secret_value(),
        }

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"


class CollectionSettings(ConnectionSettings):
    """The processes that create, migrate or fill the collection (worker, ops) also know its layout."""

    qdrant_prefer_grpc: bool = False
    qdrant_on_disk: bool = True
    # The pooled vectors' copy the HNSW walk reads; the default is layout.POOLED_QUANTIZATION, the measured layout
    # (core sits below services, so it is restated here and tests/app/services/test_layout.py holds them equal).
    qdrant_quantization: Literal["none", "scalar", "binary"] = "scalar"
    qdrant_replication_factor: int = Field(default=1, ge=1, le=5)
    qdrant_shard_number: int = Field(default=1, ge=1, le=64)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], **overrides: object) -> S:
    """Build `cls`, turning pydantic's error tree into one SettingsError naming every bad key (secrets hidden)."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            if not field:
                lines.append(error["msg"].removeprefix("Value error, "))
                continue
            shown = "" if field in SECRET_FIELDS else f"={error.get('input')!r}"
            lines.append(f"{field.upper()}{shown}: {error['msg']}")
        raise SettingsError("invalid configuration: " + " | ".join(lines)) from None
