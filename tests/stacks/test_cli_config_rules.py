"""The offline engine refuses exactly what the Pulumi CLI refuses before a program runs, plus our secret rule.

The CLI's rules (pulumi/pulumi pkg/workspace/config.go: mergeConfig, validateStackConfigValue): a declared
project key with no stack value and no default/value is missing, `secret: true` or not; a typed `secret: true` key
must hold a `secure:` value after the merge, so a plain stack value and a declared default (stored plain) are both
refused. Ours (stacks/config/loader.py check_secret_keys, run by the program itself under the real CLI too): an
optional secret (llmApiKey, sentryDsn) that is set must have been set with --secret. Each refusal is a ConfigError
naming the key, before anything is registered, and exit 2 from `python -m stacks preview`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.config import set_all_config

from stacks import cli
from stacks.config import ConfigError, config_from_pulumi
from stacks.engine import offline
from stacks.engine.offline import apply_project_config, run_stack

PROJECT = """\
name: visionrag
runtime: python
config:
  visionrag:region:
    type: string
    description: region
  visionrag:token:
    type: string
    secret: true
    description: a required secret
"""


def _project(tmp_path: Path, text: str = PROJECT) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(text)
    return tmp_path


def _problems(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(exc.value.problems)


def test_a_required_secret_without_a_value_is_missing(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with pytest.raises(ConfigError) as exc:
        apply_project_config("dev", {"visionrag:region": "us-east-1"}, root)
    assert "missing" in _problems(exc)["token"]


def test_a_secret_key_holding_a_plain_value_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with pytest.raises(ConfigError) as exc:
        apply_project_config("dev", {"visionrag:region": "us-east-1", "visionrag:token": "plain"}, root)
    assert "plain value" in _problems(exc)["token"]
    merged = apply_project_config("dev", {"visionrag:region": "us-east-1", "visionrag:token": {"secure": "v1:x"}}, root)
    assert merged["visionrag:token"] == {"secure": "v1:x"}


def test_a_secret_declared_with_a_default_fails_every_stack(tmp_path: Path) -> None:
    # The old sentryDsn declaration: the CLI stores the default plain, then refuses it as a non-secure secret.
    root = _project(tmp_path, PROJECT.replace("    secret: true\n", '    secret: true\n    default: ""\n'))
    with pytest.raises(ConfigError) as exc:
        apply_project_config("dev", {"visionrag:region": "us-east-1"}, root)
    assert "plain value" in _problems(exc)["token"]


def test_an_optional_secret_set_in_plain_text_is_refused_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("dev", overrides={"visionrag:llmApiKey": "sk-plain-text"})
    assert "--secret visionrag:llmApiKey" in _problems(exc)["llmApiKey"]
    assert "sk-plain-text" not in str(exc.value)
    monkeypatch.setattr(cli, "run_stack", lambda stack: run_stack(stack, overrides={"visionrag:sentryDsn": "x"}))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["preview", "dev"], out=out, err=err) == 2
    assert "visionrag:sentryDsn" in err.getvalue()


def test_the_program_refuses_a_plain_optional_secret_under_the_real_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the language host hands the program: PULUMI_CONFIG (JSON) and PULUMI_CONFIG_SECRET_KEYS.
    flat, _ = offline._split(apply_project_config("dev", offline.read_stack_file("dev")))
    set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**flat, "visionrag:llmApiKey": "sk-1"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(ConfigError) as exc:
        config_from_pulumi("dev")
    assert set(_problems(exc)) == {"llmApiKey"}
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["visionrag:llmApiKey"]))
    assert config_from_pulumi("dev").tier == "dev"


def _secret_names(record: Any) -> set[str]:
    return {r.inputs["name"] for r in record.of_type("aws:secretsmanager/secret:Secret")}


def test_a_stack_without_the_optional_secrets_deploys_without_them() -> None:
    record = run_stack("dev")  # no llmApiKey, no sentryDsn: what a fresh `pulumi up --stack dev` gets
    names = _secret_names(record)
    assert "visionrag-dev/llm-api-key" not in names and "visionrag-dev/sentry-dsn" not in names
    external = {
        r.inputs["metadata"]["name"] for r in record.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    }
    assert "llm-api-key" not in external and "api-auth" in external
    api = next(r for r in record.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "api")
    volume = next(v for v in api.inputs["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets")
    mounted = {s["secret"]["name"] for s in volume["projected"]["sources"]}
    assert "llm-api-key" not in mounted  # no file: the api builds no chat model, POST /chat answers 503
    with_key = run_stack("dev", secrets={"visionrag:llmApiKey": "sk-set-with-secret"})
    assert "visionrag-dev/llm-api-key" in _secret_names(with_key)
