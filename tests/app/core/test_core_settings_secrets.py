"""One rule for `SETTINGS_SECRETS_DIR`, for every process that reads the shared connection settings:
unset means no secret files; a folder that is set but missing is a start-up error naming it; files override
nothing set in the environment but fill what is not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from app.api.settings import load_settings
from app.core.settings import SettingsError
from app.ops.settings import OpsSettings, get_ops_settings
from app.worker.settings import WorkerSettings, get_worker_settings


def _fresh(getter: Any) -> Callable[[], BaseSettings]:
    def load() -> BaseSettings:
        getter.cache_clear()
        settings: BaseSettings = getter()
        return settings

    return load


# Each process's own way of loading its settings (the API's loader, the cached getters, plain construction).
LOADERS: dict[str, Callable[[], BaseSettings]] = {
    "api": lambda: load_settings(auth_enabled=False),
    "worker": _fresh(get_worker_settings),
    "ops": _fresh(get_ops_settings),
    "worker-direct": WorkerSettings,
    "ops-direct": OpsSettings,
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env
    for var in ("SETTINGS_SECRETS_DIR", "QDRANT_API_KEY", "REDIS_URL", "S3_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    yield
    get_worker_settings.cache_clear()
    get_ops_settings.cache_clear()


@pytest.mark.parametrize("process", list(LOADERS))
def test_a_configured_but_missing_folder_fails_naming_it(
    process: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "not-mounted"
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(missing))
    with pytest.raises(SettingsError, match=f"SETTINGS_SECRETS_DIR='{missing}' is not a directory"):
        LOADERS[process]()


@pytest.mark.parametrize("process", list(LOADERS))
def test_files_fill_fields_and_the_environment_wins(
    process: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "qdrant_api_key").write_text("q-from-file-7a2d")
    (secrets / "redis_url").write_text("rediss://:tok@cache.example:6379/0")
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/0")
    settings = LOADERS[process]()
    assert settings.qdrant_api_key.get_secret_value() == "q-from-file-7a2d"  # type: ignore[attr-defined]
    assert settings.redis_url == "redis://from-env:6379/0"  # type: ignore[attr-defined]


@pytest.mark.parametrize("process", list(LOADERS))
@pytest.mark.parametrize("value", [None, ""])
def test_unset_means_no_secret_files(process: str, value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is not None:
        monkeypatch.setenv("SETTINGS_SECRETS_DIR", value)
    assert LOADERS[process]().qdrant_api_key is None  # type: ignore[attr-defined]
