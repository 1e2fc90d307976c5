"""Secrets: KMS-encrypted Secrets Manager secrets, generated values, and no secret value anywhere in the record."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.naming import SECRET_RECOVERY_WINDOW_DAYS
from infra.secrets import RECOVERY_WINDOW_DAYS, JwtSettings, Secrets, SecretsArgs
from stacks.config import ConfigError, StackConfig
from stacks.config.loader import load_stack_config
from stacks.engine.mocks import RecordingMocks, _random_password
from stacks.engine.offline import SECRET, Record, RecordedResource, read_stack_file, run_stack

STACKS = ("dev", "staging", "prod")
SECRET_T = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
NAMES = ("qdrant-api-key", "cache-auth", "llm-api-key", "jwt")


def _component(record: Record) -> RecordedResource:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Secrets"]
    return component


def _children(record: Record, type_: str) -> dict[str, RecordedResource]:
    parent = _component(record).urn
    return {r.name: r for r in record.of_type(type_) if r.parent == parent}


@pytest.mark.parametrize("stack", STACKS)
def test_four_secrets_encrypted_with_the_secrets_key(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    secrets = _children(record, SECRET_T)
    assert set(secrets) == {f"secrets-{n}" for n in NAMES}
    key_arn = record.one("aws:kms/key:Key", "keys-secrets").outputs["arn"]
    for name, secret in secrets.items():
        assert secret.inputs["name"] == f"visionrag-{stack}/{name.removeprefix('secrets-')}"
        assert secret.inputs["kmsKeyId"] == key_arn, "never the AWS-managed aws/secretsmanager key"
        # dev deletes at once (a destroyed stack can be re-created: the names are free); staging/prod keep 30 days.
        assert secret.inputs["recoveryWindowInDays"] == {"dev": 0, "staging": 30, "prod": 30}[stack]
    assert record.outputs["secretNames"] == {n: f"visionrag-{stack}/{n}" for n in NAMES}


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_value_is_recorded_only_as_secret(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    secrets = _children(record, SECRET_T)
    versions = _children(record, VERSION)
    # Every stack has an issuer (its own Cognito pool by default): the jwt secret always has a value to sync.
    assert set(versions) == {f"secrets-{n}-version" for n in ("qdrant-api-key", "cache-auth", "llm-api-key", "jwt")}
    for name, version in versions.items():
        assert version.inputs["secretString"] == SECRET, name
        target = secrets[name.removesuffix("-version")]
        assert version.inputs["secretId"] == target.outputs["id"]
    for password in _children(record, PASSWORD).values():
        assert password.outputs["result"] == SECRET


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_reaches_the_plan(
    records: dict[str, Record], known_secrets: dict[str, str], stack: str
) -> None:
    record = records[stack]
    plan = json.dumps(record.to_plan())
    for value in known_secrets.values():
        assert value not in plan
    mocks = RecordingMocks(region=record.config.region, stack=stack)
    for password in _children(record, PASSWORD).values():
        generated = _random_password(password.name, password.inputs, mocks)["result"]["value"]
        assert generated not in plan, f"{password.name}'s value leaked into the record"


@pytest.mark.parametrize("stack", STACKS)
def test_generated_values_are_long_alphanumeric_and_rotatable(records: dict[str, Record], stack: str) -> None:
    passwords = _children(records[stack], PASSWORD)
    assert set(passwords) == {"secrets-qdrant-api-key-value", "secrets-cache-auth-value"}
    qdrant, cache = passwords["secrets-qdrant-api-key-value"], passwords["secrets-cache-auth-value"]
    assert qdrant.inputs["length"] == 48 and cache.inputs["length"] == 64
    for password in passwords.values():
        # ElastiCache refuses several specials in AUTH tokens, and specials break redis:// URLs.
        assert password.inputs["special"] is False
        assert min(password.inputs[k] for k in ("minUpper", "minLower", "minNumeric")) >= 4
        assert password.inputs["keepers"] == {"generation": "1"}


_ARGS: dict[str, Any] = {"name_prefix": "visionrag-dev", "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x"}
_JWT = JwtSettings(
    issuer_url="https://id.example.com/", audience="visionrag-api", jwks_url="https://id.example.com/jwks"
)


def test_jwt_settings_and_rotation_generation_and_secret_token() -> None:
    def program(cfg: StackConfig) -> None:
        secrets = Secrets(
            "secrets",
            SecretsArgs(**_ARGS, llm_api_key=pulumi.Output.secret("sk-abc"), jwt=_JWT, rotation_generation=2),
        )
        pulumi.export("token", secrets.cache_auth_token)
        pulumi.export("arns", secrets.arns)

    record = run_stack("dev", program=program)
    assert record.one(VERSION, "secrets-jwt-version").inputs["secretString"] == SECRET
    assert all(p.inputs["keepers"] == {"generation": "2"} for p in record.of_type(PASSWORD))
    assert record.outputs["token"] == SECRET, "the cache AUTH token must stay a secret Output"
    assert len(record.outputs["arns"]) == 4
    assert all(a.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:") for a in record.outputs["arns"])
    assert "sk-abc" not in json.dumps(record.to_plan())


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("llm_api_key", {"llm_api_key": "sk-plain"}),
        ("rotation_generation", {"rotation_generation": 0}),
        ("recovery_window_days", {"recovery_window_days": 3}),
        ("recovery_window_days", {"recovery_window_days": 31}),
        ("name_prefix", {"name_prefix": "Bad Prefix"}),
        ("jwt.issuer_url", {"jwt": JwtSettings(issuer_url="http://id", audience="a", jwks_url="https://id/j")}),
        ("jwt.jwks_url", {"jwt": JwtSettings(issuer_url="https://id", audience="a", jwks_url="ftp://id/j")}),
        ("jwt.audience", {"jwt": JwtSettings(issuer_url="https://id", audience="", jwks_url="https://id/j")}),
        (
            "jwt.provider",
            {"jwt": JwtSettings(issuer_url="https://id", audience="a", jwks_url="https://id/j", provider="okta")},
        ),
        (
            "jwt.algorithms",
            {"jwt": JwtSettings(issuer_url="https://id", audience="a", jwks_url="https://id/j", algorithms=["HS256"])},
        ),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    def program(cfg: StackConfig) -> None:
        args = {**_ARGS, "llm_api_key": pulumi.Output.secret("sk"), **changes}
        Secrets("secrets", SecretsArgs(**args))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)


def test_recovery_window_is_what_secrets_manager_accepts() -> None:
    # DeleteSecret: RecoveryWindowInDays 7-30, or ForceDeleteWithoutRecovery (0 here); nothing else.
    assert {0, *range(7, 31)} == SECRET_RECOVERY_WINDOW_DAYS
    assert RECOVERY_WINDOW_DAYS in SECRET_RECOVERY_WINDOW_DAYS


@pytest.mark.parametrize(("stack", "days", "ok"), [("dev", 7, True), ("prod", 0, True), ("dev", 5, False)])
def test_config_validates_the_recovery_window_naming_the_key(stack: str, days: int, ok: bool) -> None:
    values = {k.removeprefix("visionrag:"): v for k, v in read_stack_file(stack).items() if k.startswith("visionrag:")}
    values["secrets"] = {"recoveryWindowDays": days}
    if ok:
        assert load_stack_config(stack, values).secrets.recovery_window_days == days
    else:
        with pytest.raises(ConfigError, match=r"secrets\.recoveryWindowDays"):
            load_stack_config(stack, values)
