"""Settings: env parsing, secrets from files, and the refusal of unsafe values outside dev (one clear message)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.api.settings import Settings, get_settings, load_settings
from app.core.settings import SettingsError

AUTH = {
    "auth_issuer_url": "https://id.example.com/",
    "auth_audience": "visionrag-api",
    "auth_jwks_url": "https://id.example.com/jwks",
}
SAFE_PROD = {
    **AUTH,
    "environment": "prod",
    "allowed_origins": "https://app.example.com",
    "s3_access_key": "AKIAREALKEY123",
    "s3_secret_key": "s3cr3t-Value-From-Secrets-Manager",
    "s3_sse": "kms",
    "s3_kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/abc",
    "qdrant_url": "http://qdrant:6333",
    "qdrant_api_key": "q-api-key-0123456789",
}


def test_safe_prod_settings_load() -> None:
    settings = load_settings(**SAFE_PROD)
    assert settings.environment == "prod" and settings.allowed_origins == ["https://app.example.com"]
    assert settings.s3_secret_key.get_secret_value() not in repr(settings)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"allowed_origins": "*"}, "ALLOWED_ORIGINS contains wildcard"),
        ({"allowed_origins": "https://*.example.com"}, "ALLOWED_ORIGINS contains wildcard"),
        ({"s3_secret_key": "changeme"}, "S3_SECRET_KEY is empty or a placeholder"),
        ({"s3_access_key": "minioadmin"}, "S3_ACCESS_KEY is empty or a placeholder"),
        ({"openai_api_key": "sk-changeme"}, None),
        ({"s3_public_read": True}, "S3_PUBLIC_READ=true"),
        ({"auth_enabled": False}, "AUTH_ENABLED=false"),
        ({"s3_sse": "none"}, "S3_SSE='none'"),
        ({"api_docs_enabled": True}, "API_DOCS_ENABLED=true"),
        ({"auth_jwks_url": "http://id.example.com/jwks"}, "is not https"),
        ({"qdrant_api_key": None}, "QDRANT_API_KEY is unset"),
    ],
)
def test_unsafe_values_are_refused_outside_dev(override, named) -> None:
    for environment in ("staging", "prod"):
        with pytest.raises(SettingsError) as err:
            load_settings(**{**SAFE_PROD, **override, "environment": environment})
        message = str(err.value)
        assert message.startswith("invalid configuration: unsafe or incomplete settings for environment=")
        if named:
            assert named in message
        # Secret values never appear in the message.
        assert "s3cr3t-Value" not in message


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{**SAFE_PROD, "allowed_origins": "*", "s3_public_read": True, "auth_enabled": False})
    message = str(err.value)
    assert "ALLOWED_ORIGINS" in message and "S3_PUBLIC_READ" in message and "AUTH_ENABLED" in message


def test_dev_allows_the_laptop_shortcuts() -> None:
    settings = load_settings(environment="dev", auth_enabled=False, allowed_origins="*", s3_public_read=True)
    assert settings.is_dev and settings.allowed_origins == ["*"]


def test_bad_values_name_key_value_and_allowed() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**AUTH, environment="production")
    assert "ENVIRONMENT='production'" in str(err.value) and "'dev', 'staging' or 'prod'" in str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings(**AUTH, auth_algorithms="RS256,HS256")
    assert "HS256" in str(err.value) and "allowed:" in str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings(**AUTH, rate_limit_chat="lots")
    assert "RATE_LIMIT_CHAT='lots'" in str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings(**AUTH, trusted_proxies="10.0.0.0/8,not-an-ip")
    assert "not-an-ip" in str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings(environment="dev")
    assert "AUTH_ISSUER_URL" in str(err.value)


def test_environment_and_secret_files(monkeypatch, tmp_path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "s3_secret_key").write_text("from-a-mounted-secret")
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("AUTH_ISSUER_URL", AUTH["auth_issuer_url"])
    monkeypatch.setenv("AUTH_AUDIENCE", AUTH["auth_audience"])
    monkeypatch.setenv("AUTH_JWKS_URL", AUTH["auth_jwks_url"])
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example.com, https://b.example.com")
    monkeypatch.setenv("MAX_UPLOAD_MB", "7")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.s3_secret_key.get_secret_value() == "from-a-mounted-secret"
        assert settings.allowed_origins == ["https://a.example.com", "https://b.example.com"]
        assert settings.max_upload_bytes == 7 * 1024 * 1024
        assert get_settings() is settings  # cached
    finally:
        get_settings.cache_clear()


ROOT = Path(__file__).resolve().parents[3]


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented = {}
    for index, line in enumerate(lines):
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            documented[match.group(1)] = index
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - set(documented) == set(), "settings missing from .env.example"
    for name in fields:
        index = documented[name]
        block = []  # the run of non-blank lines this setting belongs to must carry a comment
        while index >= 0 and lines[index].strip():
            block.append(lines[index])
            index -= 1
        assert any(line.startswith("# ") for line in block), f"{name} has no comment"


def test_gunicorn_config_reads_settings_and_refuses_unsafe_ones() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "ENVIRONMENT", "AUTH_"))}
    env.update(
        {
            "AUTH_ISSUER_URL": "https://id/",
            "AUTH_AUDIENCE": "a",
            "AUTH_JWKS_URL": "https://id/jwks",
            "GUNICORN_WORKERS": "3",
            "GUNICORN_TIMEOUT": "45",
            "GUNICORN_KEEPALIVE": "7",
        }
    )
    probe = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['workers'], c['timeout'], c['keepalive'], c['worker_class'], c['wsgi_app'])"
    )
    ok = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["3", "45", "7", "uvicorn.workers.UvicornWorker", "app.api.main:create_app()"]
    env.update({"ENVIRONMENT": "prod", "ALLOWED_ORIGINS": "*"})
    bad = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "ALLOWED_ORIGINS contains wildcard" in bad.stderr


def test_app_factory_refuses_unsafe_settings_with_one_line(monkeypatch) -> None:
    from app.api.main import create_app

    for key, value in {**SAFE_PROD, "allowed_origins": "*", "s3_public_read": "true"}.items():
        monkeypatch.setenv(key.upper(), str(value))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            create_app()
    finally:
        get_settings.cache_clear()
    message = str(exit_info.value)
    assert message.startswith("visionrag-api: invalid configuration:") and "\n" not in message
    assert "ALLOWED_ORIGINS" in message and "S3_PUBLIC_READ" in message


def test_checklist_minio_names_are_accepted(monkeypatch) -> None:
    monkeypatch.setenv("MINIO_SSE", "auto")
    monkeypatch.setenv("MINIO_PUBLIC_READ", "true")
    settings = load_settings(**AUTH)
    assert settings.s3_sse == "s3" and settings.s3_public_read is True
    with pytest.raises(SettingsError) as err:
        load_settings(**{k: v for k, v in SAFE_PROD.items() if k not in {"s3_sse", "s3_kms_key_id"}})
    assert "S3_PUBLIC_READ=true" in str(err.value)
