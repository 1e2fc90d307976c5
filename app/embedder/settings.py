"""Embedder settings (env prefix `EMBEDDER_`), separate from the API's: the GPU image installs only this."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from app.core.telemetry import Sampling

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
SECRETS_DIR_ENV = "SETTINGS_SECRETS_DIR"


def _plain(name: str) -> AliasChoices:
    """The field's name without the EMBEDDER_ prefix (environment variable, init argument and secret file)."""
    return AliasChoices(name)


class EmbedderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDER_", extra="ignore", case_sensitive=False)

    environment: Literal["dev", "staging", "prod"] = "dev"
    # A hub id or a local directory. Production syncs the weights from the `models` bucket into a volume
    # and points this at the directory, so pods never depend on the hub.
    model: str = "vidore/colpali-v1.3-hf"
    model_revision: str | None = None
    allow_download: bool = False
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"

    host: str = "0.0.0.0"  # noqa: S104 - the container listens on the pod network
    port: int = Field(default=7000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    max_batch_size: int = Field(default=8, ge=1, le=256)
    max_wait_ms: float = Field(default=10.0, ge=0, le=1000)
    # Items waiting for the model; beyond this requests get 503 at once instead of queueing unboundedly.
    max_queue: int = Field(default=256, ge=1)
    max_images_per_request: int = Field(default=32, ge=1, le=256)
    max_queries_per_request: int = Field(default=64, ge=1, le=1024)
    max_query_chars: int = Field(default=1000, ge=1)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    image_formats: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP"])

    # Tracing and error tracking (app/core/telemetry.py) under the names every process shares, without the
    # EMBEDDER_ prefix: one variable name per setting across the deployment. The DSN arrives as the `sentry_dsn`
    # file under $SETTINGS_SECRETS_DIR, like the api's and the worker's.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=_plain("otel_exporter_otlp_endpoint")
    )
    otel_service_name: str = Field(default="visionrag-embedder", validation_alias=_plain("otel_service_name"))
    otel_traces_sampler: Sampling = Field(
        default="parentbased_traceidratio", validation_alias=_plain("otel_traces_sampler")
    )
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0, le=1, validation_alias=_plain("otel_traces_sampler_arg"))
    sentry_dsn: SecretStr | None = Field(default=None, validation_alias=_plain("sentry_dsn"))
    sentry_traces_sample_rate: float = Field(
        default=0.0, ge=0, le=1, validation_alias=_plain("sentry_traces_sample_rate")
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The same rule as app/core/settings.py secrets_dir (not imported: this image installs no minio).
        directory = os.environ.get(SECRETS_DIR_ENV)
        if directory:
            if not os.path.isdir(directory):
                raise ValueError(f"{SECRETS_DIR_ENV}={directory!r} is not a directory (the mounted Secret files)")
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("image_formats", mode="before")
    @classmethod
    def _formats(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            upper = [str(v).upper() for v in value]
            bad = [v for v in upper if v not in IMAGE_FORMATS]
            if bad or not upper:
                raise ValueError(f"EMBEDDER_IMAGE_FORMATS={value!r}: allowed values are {', '.join(IMAGE_FORMATS)}")
            return upper
        return value

    @model_validator(mode="after")
    def _safe(self) -> EmbedderSettings:
        if self.environment != "dev" and self.allow_download:
            raise ValueError(
                "EMBEDDER_ALLOW_DOWNLOAD=true is refused outside dev (allowed: false; sync weights to a volume)"
            )
        return self

    @property
    def is_local_path(self) -> bool:
        return Path(self.model).expanduser().is_dir()

    @property
    def local_files_only(self) -> bool:
        return self.is_local_path or not self.allow_download


@lru_cache(maxsize=1)
def get_embedder_settings() -> EmbedderSettings:
    return EmbedderSettings()
