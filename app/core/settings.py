"""Typed settings for the API, the worker and the ops commands (pydantic-settings).

Every knob comes from the environment (or `.env`, or one file per secret under `SETTINGS_SECRETS_DIR`, which is
how Kubernetes Secrets are mounted). `get_settings()` is cached so the app reads the environment once; tests
override it with `app.dependency_overrides[get_settings]` or by passing a Settings to `create_app`.

Outside `dev` the unsafe choices that are convenient on a laptop are refused, all at once, in one message.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import Annotated, Any, Literal, Protocol

from limits import parse_many
from minio.credentials import IamAwsProvider
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["dev", "staging", "prod"]

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

# Symmetric and unsigned algorithms would let anyone holding the (public) JWKS forge tokens.
SAFE_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


SECRET_FIELDS = frozenset({"s3_access_key", "s3_secret_key", "qdrant_api_key", "openai_api_key", "sentry_dsn"})


class SettingsError(ValueError):
    """The configuration cannot be used; the message names every offending key, value and what is allowed."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def is_placeholder(secret: SecretStr | None) -> bool:
    if secret is None:
        return True
    value = secret.get_secret_value().strip().lower()
    return value in PLACEHOLDER_SECRETS or any(marker in value for marker in PLACEHOLDER_MARKERS)


class S3AuthFields(Protocol):
    """What any process's settings carry for S3 auth (the API's Settings and ServiceSettings alike)."""

    s3_auth: Literal["static", "iam"]
    s3_sts_endpoint: str | None
    s3_access_key: SecretStr
    s3_secret_key: SecretStr


def s3_auth_problems(settings: S3AuthFields, *, outside_dev: bool) -> list[str]:
    """Why the S3 credentials cannot be used: always the iam/static ambiguity, placeholders outside dev."""
    keys = (("S3_ACCESS_KEY", settings.s3_access_key), ("S3_SECRET_KEY", settings.s3_secret_key))
    if settings.s3_auth == "iam":
        if any(secret.get_secret_value() for _, secret in keys):
            # minio would silently prefer the static keys over the role: refuse the ambiguity everywhere.
            return ["S3_ACCESS_KEY/S3_SECRET_KEY are set while S3_AUTH='iam' (allowed: unset with 'iam')"]
        return []
    if not outside_dev:
        return []
    return [
        f"{key} is empty or a placeholder (allowed: a real credential, or S3_AUTH='iam' without keys)"
        for key, secret in keys
        if is_placeholder(secret)
    ]


def s3_credentials(settings: S3AuthFields) -> dict[str, Any]:
    """PageStorage's credential arguments for the configured S3_AUTH mode.

    "iam": no keys; minio's IamAwsProvider signs with short-lived credentials from the web identity EKS
    injects (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, IRSA) or the container/instance role, refreshed
    before they expire. s3_auth_problems guarantees no static key is set alongside it.
    """
    if settings.s3_auth == "iam":
        # Only the web-identity exchange goes to s3_sts_endpoint; IMDS/ECS fallbacks keep their fixed addresses.
        sts = settings.s3_sts_endpoint if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") else None
        return {"access_key": "", "secret_key": "", "credentials": IamAwsProvider(custom_endpoint=sts)}
    return {
        "access_key": settings.s3_access_key.get_secret_value(),
        "secret_key": settings.s3_secret_key.get_secret_value(),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- deployment ---
    environment: Environment = "dev"
    service_name: str = "visionrag-api"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    # --- auth (OIDC bearer tokens) ---
    auth_enabled: bool = True
    auth_provider: str = "oidc"
    auth_issuer_url: str = ""
    auth_audience: str = ""
    auth_jwks_url: str = ""
    auth_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256", "ES256"])
    auth_leeway_s: int = Field(default=30, ge=0, le=300)
    auth_jwks_timeout_s: float = Field(default=2.0, gt=0, le=30)
    auth_jwks_cache_ttl_s: int = Field(default=600, ge=10)
    # Refetches triggered by unknown `kid`s are throttled so forged kids cannot hammer the issuer.
    auth_jwks_min_refresh_interval_s: float = Field(default=10.0, ge=0)
    auth_roles_claim: str = "roles"
    auth_admin_role: str = "admin"
    # When set, cache entries and quotas are shared by everyone with the same tenant claim value.
    auth_tenant_claim: str | None = None
    # Restrict search and chat to the caller's own documents (payload `owner` = token `sub`).
    search_own_documents_only: bool = False

    # --- HTTP edge ---
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Peers allowed to set X-Forwarded-For (the ingress / load balancer ranges). Empty: never trust it.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    hsts_max_age_s: int = Field(default=31_536_000, ge=0)
    max_request_body_kb: int = Field(default=256, ge=1)
    # Interactive docs and /openapi.json are off unless asked for (dev only): they are unauthenticated routes.
    api_docs_enabled: bool = False

    # --- rate limiting (limits syntax, e.g. "60/minute;1000/hour") ---
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = Field(default=300, ge=1)
    rate_limit_search: str = "60/minute"
    rate_limit_chat: str = "20/minute"
    rate_limit_upload: str = "10/minute"
    rate_limit_storage_url: str | None = None
    rate_limit_fail_open: bool = False

    # --- redis ---
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(default=1.0, gt=0)

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
    s3_bucket_audit: str = "visionrag-audit"
    # The checklist's MINIO_* names are accepted as aliases (MINIO_SSE=auto means SSE-S3).
    s3_sse: Literal["none", "s3", "kms"] = Field(default="none", validation_alias=AliasChoices("s3_sse", "minio_sse"))
    s3_kms_key_id: str | None = Field(default=None, validation_alias=AliasChoices("s3_kms_key_id", "minio_kms_key_id"))
    s3_public_read: bool = Field(default=False, validation_alias=AliasChoices("s3_public_read", "minio_public_read"))
    s3_use_presigned_urls: bool = Field(
        default=True, validation_alias=AliasChoices("s3_use_presigned_urls", "minio_use_presigned_urls")
    )
    presign_ttl_s: int = Field(default=300, ge=30, le=3600)
    s3_timeout_s: float = Field(default=5.0, gt=0)
    # Host browsers use for presigned URLs when it differs from the one pods use (ingress vs service DNS).
    s3_public_endpoint: str | None = None

    # --- qdrant ---
    qdrant_url: str = ":memory:"
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "pages"
    qdrant_timeout_s: float = Field(default=10.0, gt=0)

    # --- embedder (ColPali service) ---
    embedder_url: str = "http://127.0.0.1:7000"
    embedder_timeout_s: float = Field(default=30.0, gt=0)

    # --- shared outgoing HTTP / resilience ---
    http_connect_timeout_s: float = Field(default=2.0, gt=0)
    http_read_timeout_s: float = Field(default=15.0, gt=0)
    http_max_connections: int = Field(default=100, ge=1)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_initial_s: float = Field(default=0.1, ge=0)
    retry_backoff_max_s: float = Field(default=2.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: float = Field(default=30.0, gt=0)
    health_timeout_s: float = Field(default=1.0, gt=0)
    health_cache_ttl_s: float = Field(default=5.0, ge=0)
    # Dependencies reported by /health that do not make it 503 (e.g. "embedder" while the GPU pool scales from 0).
    health_optional_dependencies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- uploads ---
    max_upload_mb: int = Field(default=50, ge=1, le=1024)
    max_upload_files: int = Field(default=10, ge=1, le=100)
    max_pdf_pages: int = Field(default=500, ge=1)
    clamd_host: str | None = None
    clamd_port: int = Field(default=3310, ge=1, le=65535)
    clamd_timeout_s: float = Field(default=15.0, gt=0)

    # --- chat (OpenAI-compatible API) ---
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=5)
    chat_max_concurrency: int = Field(default=8, ge=1)
    chat_queue_timeout_s: float = Field(default=5.0, gt=0)
    chat_daily_token_budget: int = Field(default=200_000, ge=1)
    chat_max_output_tokens: int = Field(default=512, ge=16)
    chat_top_k: int = Field(default=3, ge=1, le=10)
    chat_moderation_enabled: bool = False
    chat_moderation_model: str = "omni-moderation-latest"

    # --- response cache ---
    cache_enabled: bool = True
    cache_ttl_s: int = Field(default=300, ge=1)

    # --- observability ---
    metrics_enabled: bool = True
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "visionrag-api"
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)

    # --- serving (read by gunicorn.conf.py) ---
    gunicorn_bind: str = "0.0.0.0:8000"
    gunicorn_workers: int = Field(default=2, ge=1, le=64)
    gunicorn_threads: int = Field(default=1, ge=1, le=64)
    gunicorn_timeout: int = Field(default=60, ge=5)
    gunicorn_graceful_timeout: int = Field(default=30, ge=1)
    gunicorn_keepalive: int = Field(default=5, ge=1)
    gunicorn_max_requests: int = Field(default=5000, ge=0)

    @field_validator(
        "allowed_origins", "trusted_proxies", "auth_algorithms", "health_optional_dependencies", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("auth_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in SAFE_JWT_ALGORITHMS]
        if bad or not value:
            raise ValueError(
                f"AUTH_ALGORITHMS={','.join(value)!r}: {bad or 'empty'} not allowed; "
                f"allowed: {', '.join(sorted(SAFE_JWT_ALGORITHMS))}"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES entry {item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("rate_limit_search", "rate_limit_chat", "rate_limit_upload")
    @classmethod
    def _limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit like '60/minute' or '10/second;500/hour'") from None
        return value

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
    def _consistent(self) -> Settings:
        problems: list[str] = []
        if self.s3_sse == "kms" and not self.s3_kms_key_id:
            problems.append("S3_KMS_KEY_ID is required when S3_SSE='kms'")
        problems.extend(s3_auth_problems(self, outside_dev=self.environment != "dev"))
        if self.auth_enabled and not (self.auth_issuer_url and self.auth_audience and self.auth_jwks_url):
            problems.append("AUTH_ISSUER_URL, AUTH_AUDIENCE and AUTH_JWKS_URL are required when AUTH_ENABLED=true")
        if self.environment != "dev":
            problems.extend(self.unsafe_outside_dev())
        if problems:
            raise ValueError(
                f"unsafe or incomplete settings for environment={self.environment!r}: " + "; ".join(problems)
            )
        return self

    def unsafe_outside_dev(self) -> list[str]:
        problems: list[str] = []
        if not self.auth_enabled:
            problems.append("AUTH_ENABLED=false (allowed: true)")
        if self.api_docs_enabled:
            problems.append("API_DOCS_ENABLED=true (allowed: false; unauthenticated docs routes are dev-only)")
        wildcard = [origin for origin in self.allowed_origins if "*" in origin]
        if wildcard:
            problems.append(f"ALLOWED_ORIGINS contains wildcard {wildcard} (allowed: explicit https origins)")
        plain_http = [o for o in self.allowed_origins if o.startswith("http://")]
        if plain_http:
            problems.append(f"ALLOWED_ORIGINS contains non-https {plain_http} (allowed: https origins)")
        if self.s3_public_read:
            problems.append("S3_PUBLIC_READ=true (allowed: false; images are served through presigned URLs)")
        if not self.s3_use_presigned_urls:
            problems.append("S3_USE_PRESIGNED_URLS=false (allowed: true)")
        if self.s3_sse == "none":
            problems.append("S3_SSE='none' (allowed: 's3', 'kms')")
        if self.auth_jwks_url.startswith("http://"):
            problems.append(f"AUTH_JWKS_URL={self.auth_jwks_url!r} is not https")
        optional_secrets = (
            ("OPENAI_API_KEY", self.openai_api_key),
            ("QDRANT_API_KEY", self.qdrant_api_key),
            ("SENTRY_DSN", self.sentry_dsn),
        )
        for key, maybe in optional_secrets:
            if maybe is not None and is_placeholder(maybe):
                problems.append(f"{key} is a placeholder (allowed: a real value or unset)")
        if self.qdrant_url.startswith(("http://", "https://")) and self.qdrant_api_key is None:
            problems.append("QDRANT_API_KEY is unset for a remote QDRANT_URL (allowed: the cluster's API key)")
        return problems

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def limiter_storage_url(self) -> str:
        return self.rate_limit_storage_url or self.redis_url


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error tree into one SettingsError naming every bad key."""
    secrets_dir = os.environ.get("SETTINGS_SECRETS_DIR")
    kwargs: dict[str, object] = dict(overrides)
    if secrets_dir and os.path.isdir(secrets_dir):
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return Settings(**kwargs)  # type: ignore[arg-type]
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
