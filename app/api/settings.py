"""The API's settings: the shared connection fields (app/core/settings.py) plus auth, the HTTP edge, rate
limits, uploads, chat, the response cache, observability and gunicorn.

`get_settings()` is cached so the app reads the environment once; tests override it with
`app.dependency_overrides[get_settings]` or by passing a Settings to `create_app`.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from app.core.settings import ConnectionSettings, is_placeholder, load, split_csv

# Symmetric and unsigned algorithms would let anyone holding the (public) JWKS forge tokens.
SAFE_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

# The issuer of an Amazon Cognito user pool: the only issuer whose access tokens are matched on `client_id`.
COGNITO_ISSUER = re.compile(
    r"https://cognito-idp\.[a-z]{2}(-gov)?-[a-z]+-\d\.amazonaws\.com/[a-z]{2}(-gov)?-[a-z]+-\d_[0-9A-Za-z]+"
)


class Settings(ConnectionSettings):
    # --- deployment ---
    service_name: str = "visionrag-api"

    # --- auth (OIDC bearer tokens) ---
    auth_enabled: bool = True
    # "cognito": Amazon Cognito access tokens carry the app client id in `client_id` (and `token_use: access`),
    # not in `aud`; app/api/auth.py checks those instead, for this issuer only. "oidc": strict `aud`.
    auth_provider: Literal["oidc", "cognito"] = "oidc"
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

    # --- quotas per UTC day (app/api/quotas.py); unset: not counted. Search/chat per tenant (AUTH_TENANT_CLAIM,
    # else per subject), uploads per identity (JWT sub). The stack sets them from workloads.quotas.
    quota_search_per_day: int | None = Field(default=None, ge=1)
    quota_chat_per_day: int | None = Field(default=None, ge=1)
    quota_upload_pages_per_day: int | None = Field(default=None, ge=1)
    quota_upload_mb_per_day: int | None = Field(default=None, ge=1)
    # Bounds the `tenant` label of visionrag_tenant_usage_total per process (the rest is `_other`).
    quota_metric_max_tenants: int = Field(default=50, ge=0, le=1000)

    # --- redis (the URL is a connection field) ---
    redis_timeout_s: float = Field(default=1.0, gt=0)

    # --- object storage: what only the API does (presigned URLs for browsers; the audit bucket is shared) ---
    s3_public_read: bool = Field(default=False, validation_alias=AliasChoices("s3_public_read", "minio_public_read"))
    s3_use_presigned_urls: bool = Field(
        default=True, validation_alias=AliasChoices("s3_use_presigned_urls", "minio_use_presigned_urls")
    )
    presign_ttl_s: int = Field(default=300, ge=30, le=3600)
    # Host browsers use for presigned URLs when it differs from the one pods use (ingress vs service DNS).
    s3_public_endpoint: str | None = None

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
    # Uploads one process spools to /tmp at once (app/api/upload_slots.py); the pod's /tmp is sized from it
    # (infra/workloads/uploads.py). One more waits up to UPLOAD_QUEUE_TIMEOUT_S, then gets 503 + Retry-After.
    upload_max_concurrent: int = Field(default=2, ge=1, le=16)
    upload_queue_timeout_s: float = Field(default=5.0, gt=0, le=60)
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
    # LLM tokens per scope (tenant, else subject) per UTC day. QUOTA_LLM_PER_DAY is the name the stack sets: the
    # no-plaintext-secrets policy reads any env name with TOKEN in it as a credential.
    chat_daily_token_budget: int = Field(
        default=200_000, ge=1, validation_alias=AliasChoices("chat_daily_token_budget", "quota_llm_per_day")
    )
    chat_max_output_tokens: int = Field(default=512, ge=16)
    chat_top_k: int = Field(default=3, ge=1, le=10)
    chat_moderation_enabled: bool = False
    chat_moderation_model: str = "omni-moderation-latest"

    # --- response cache ---
    cache_enabled: bool = True
    cache_ttl_s: int = Field(default=300, ge=1)

    # --- observability (log level/format and Sentry are connection fields) ---
    metrics_enabled: bool = True
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    # OTEL_EXPORTER_OTLP_ENDPOINT and the sampler are connection fields (app/core/settings.py).
    otel_service_name: str = "visionrag-api"

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
        return split_csv(value)

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

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.auth_enabled and not (self.auth_issuer_url and self.auth_audience and self.auth_jwks_url):
            problems.append("AUTH_ISSUER_URL, AUTH_AUDIENCE and AUTH_JWKS_URL are required when AUTH_ENABLED=true")
        if self.auth_provider == "cognito" and not COGNITO_ISSUER.fullmatch(self.auth_issuer_url):
            problems.append(
                f"AUTH_PROVIDER='cognito' needs a Cognito user pool issuer "
                f"(https://cognito-idp.<region>.amazonaws.com/<pool id>), got AUTH_ISSUER_URL={self.auth_issuer_url!r}"
            )
        if not self.is_dev:
            problems.extend(self.unsafe_outside_dev())
        return problems

    def unsafe_outside_dev(self) -> list[str]:
        """The API's own refusals outside dev (the shared ones are in ConnectionSettings.problems)."""
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
        if self.auth_jwks_url.startswith("http://"):
            problems.append(f"AUTH_JWKS_URL={self.auth_jwks_url!r} is not https")
        if self.openai_api_key is not None and is_placeholder(self.openai_api_key):
            problems.append("OPENAI_API_KEY is a placeholder (allowed: a real value or unset)")
        return problems

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def quota_upload_bytes_per_day(self) -> int | None:
        return None if self.quota_upload_mb_per_day is None else self.quota_upload_mb_per_day * 1024 * 1024

    @property
    def limiter_storage_url(self) -> str:
        return self.rate_limit_storage_url or self.redis_url


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error tree into one SettingsError naming every bad key."""
    return load(Settings, **overrides)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
