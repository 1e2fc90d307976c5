"""The embedder reads tracing and Sentry settings under the names every process shares (no EMBEDDER_ prefix),
and its Sentry DSN from the mounted settings file, like the api and the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.embedder.settings import EmbedderSettings


def test_shared_names_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.visionrag-system.svc.cluster.local:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "visionrag-embedder")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("EMBEDDER_OTEL_TRACES_SAMPLER_ARG", "0.9")  # the prefixed name means nothing
    settings = EmbedderSettings()
    assert settings.otel_exporter_otlp_endpoint.endswith(":4318")  # type: ignore[union-attr]
    assert settings.otel_traces_sampler_arg == 0.25
    assert settings.otel_traces_sampler == "parentbased_traceidratio"


def test_the_dsn_comes_from_the_mounted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sentry_dsn").write_text("https://key@o1.ingest.sentry.example/7")
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(tmp_path))
    dsn = EmbedderSettings().sentry_dsn
    assert dsn is not None and dsn.get_secret_value() == "https://key@o1.ingest.sentry.example/7"
    monkeypatch.delenv("SETTINGS_SECRETS_DIR")
    assert EmbedderSettings().sentry_dsn is None


def test_a_mis_mounted_secrets_dir_fails_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTINGS_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="SETTINGS_SECRETS_DIR"):
        EmbedderSettings()


@pytest.mark.parametrize(("key", "value"), [("OTEL_TRACES_SAMPLER_ARG", "1.5"), ("OTEL_TRACES_SAMPLER", "sometimes")])
def test_bad_sampling_is_refused(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=key.lower()):
        EmbedderSettings()
