"""Embedder settings (env prefix `EMBEDDER_`), separate from the API's: the GPU image installs only this."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")


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
