"""S3_AUTH: static keys or the pod's IAM role (IRSA), and what each mode refuses outside dev."""

from __future__ import annotations

import pytest

from app.api.settings import load_settings
from app.core.settings import SettingsError
from tests.app.core.test_core_settings import SAFE_PROD

IAM_PROD = {k: v for k, v in SAFE_PROD.items() if k not in ("s3_access_key", "s3_secret_key")} | {"s3_auth": "iam"}


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("S3_AUTH", "S3_ACCESS_KEY", "S3_SECRET_KEY", "SETTINGS_SECRETS_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_iam_mode_loads_without_static_keys_outside_dev(environment: str) -> None:
    settings = load_settings(**{**IAM_PROD, "environment": environment})
    assert settings.s3_auth == "iam"
    assert settings.s3_access_key.get_secret_value() == "" and settings.s3_secret_key.get_secret_value() == ""


def test_iam_mode_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_AUTH", "iam")
    assert load_settings(**{k: v for k, v in IAM_PROD.items() if k != "s3_auth"}).s3_auth == "iam"


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_static_mode_without_keys_is_refused_outside_dev_and_names_the_alternative(environment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{**IAM_PROD, "s3_auth": "static", "environment": environment})
    message = str(err.value)
    assert "S3_ACCESS_KEY is empty or a placeholder" in message and "S3_SECRET_KEY" in message
    assert "S3_AUTH='iam'" in message


@pytest.mark.parametrize("key", ["s3_access_key", "s3_secret_key"])
@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_iam_mode_with_static_keys_is_refused_in_every_environment(key: str, environment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{**IAM_PROD, key: "AKIAREALKEY123", "environment": environment})
    assert "while S3_AUTH='iam'" in str(err.value)
    assert "AKIAREALKEY123" not in str(err.value)


def test_unknown_mode_is_refused_with_the_allowed_values() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{**IAM_PROD, "s3_auth": "anonymous"})
    assert "S3_AUTH='anonymous'" in str(err.value) and "'static'" in str(err.value) and "'iam'" in str(err.value)


def test_dev_keeps_static_keys_as_the_default() -> None:
    assert load_settings(environment="dev", auth_enabled=False).s3_auth == "static"
