"""What every process's settings share besides the API's: Kubernetes Secret files and the S3 auth mode.

The worker and the ops commands build their settings class directly (`WorkerSettings()`), so the
`SETTINGS_SECRETS_DIR` lookup happens in the class's sources, not in a loader function. `S3_AUTH` means the same
as for the API (app/core/settings.py): "static" keys, or "iam" (IRSA web identity, no keys in the pod).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource

from app.core.settings import s3_auth_problems, s3_credentials

SECRETS_DIR_ENV = "SETTINGS_SECRETS_DIR"


class ServiceSettings(BaseSettings):
    """Base for process settings: reads one file per field from `$SETTINGS_SECRETS_DIR` when it is set."""

    s3_auth: Literal["static", "iam"] = "static"
    # STS endpoint for the web-identity exchange in "iam" mode (AWS_ENDPOINT_URL_STS, as the AWS SDKs name it).
    s3_sts_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("s3_sts_endpoint", "aws_endpoint_url_sts")
    )
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read at construction time (not class definition), so the pod's env decides; a missing directory is a
        # mis-mounted Secret and fails loudly instead of silently falling back to laptop defaults.
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            if not os.path.isdir(secrets_dir):
                raise ValueError(f"{SECRETS_DIR_ENV}={secrets_dir!r} is not a directory (the mounted Secret files)")
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def s3_auth_problems(self, *, outside_dev: bool) -> list[str]:
        return s3_auth_problems(self, outside_dev=outside_dev)

    def s3_credentials(self) -> dict[str, Any]:
        return s3_credentials(self)
