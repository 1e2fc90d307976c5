"""workloads.quotas and workloads.llmModeration: the api's daily quotas, tenant claim and LLM moderation are stack
config with tier defaults, reach the api pods (and only them), and are exactly what the app reads.

Judged on the recorded program (stacks/program.py workloads_args -> infra/workloads/pod_env.py): the api and canary
containers' env; the app's own Settings loaded from that env (so a renamed setting fails here, not in a pod); a bad
value is a ConfigError naming the key before the engine starts.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.api.settings import load_settings
from stacks.config import ConfigError
from stacks.config.tiers import TIER_DEFAULTS
from stacks.engine import offline
from stacks.engine.offline import Record, run_stack
from tests.conftest import RecordOf
from tests.infra.workloads.graph import DEPLOYMENT, by_name, containers, pod_template

QUOTA_ENV = (
    "QUOTA_SEARCH_PER_DAY",
    "QUOTA_CHAT_PER_DAY",
    "QUOTA_LLM_PER_DAY",
    "QUOTA_UPLOAD_PAGES_PER_DAY",
    "QUOTA_UPLOAD_MB_PER_DAY",
    "QUOTA_METRIC_MAX_TENANTS",
    "CHAT_MODERATION_ENABLED",
    "AUTH_TENANT_CLAIM",
)
EXTERNAL_IDP = {
    "frontend": None,  # the frontend signs in with the stack's Cognito pool only
    "auth": {"issuerUrl": "https://idp.example.com/", "audience": "visionrag", "jwksUrl": "https://idp.example.com/j"},
}


def _env(record: Record, deployment: str) -> dict[str, str]:
    pod = containers(pod_template(by_name(record, DEPLOYMENT, deployment)))
    assert pod
    return {e["name"]: e.get("value") for c in pod for e in c.get("env", []) if e["name"] in QUOTA_ENV}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_tier_defaults_reach_the_api_pods_and_the_app_reads_them(
    records: dict[str, Record], stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = TIER_DEFAULTS[stack]["workloads"]
    quotas = tier["quotas"]
    env = _env(records[stack], "api")
    assert env == {
        "QUOTA_SEARCH_PER_DAY": str(quotas["searchPerDay"]),
        "QUOTA_CHAT_PER_DAY": str(quotas["chatPerDay"]),
        "QUOTA_LLM_PER_DAY": str(quotas["llmTokensPerDay"]),
        "QUOTA_UPLOAD_PAGES_PER_DAY": str(quotas["uploadPagesPerDay"]),
        "QUOTA_UPLOAD_MB_PER_DAY": str(quotas["uploadMbPerDay"]),
        "QUOTA_METRIC_MAX_TENANTS": "50",
        "CHAT_MODERATION_ENABLED": "true" if tier["llmModeration"] else "false",
    }
    assert _env(records[stack], "worker") == {}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(environment="dev", auth_enabled=False)
    assert settings.quota_search_per_day == quotas["searchPerDay"]
    assert settings.quota_chat_per_day == quotas["chatPerDay"]
    assert settings.chat_daily_token_budget == quotas["llmTokensPerDay"]
    assert settings.quota_upload_pages_per_day == quotas["uploadPagesPerDay"]
    assert settings.quota_upload_bytes_per_day == quotas["uploadMbPerDay"] * 1024 * 1024
    assert settings.chat_moderation_enabled is tier["llmModeration"]


def test_moderation_is_on_by_default_outside_dev() -> None:
    assert TIER_DEFAULTS["staging"]["workloads"]["llmModeration"] is True
    assert TIER_DEFAULTS["prod"]["workloads"]["llmModeration"] is True


def test_a_tenant_claim_from_an_external_issuer_reaches_the_api_and_its_canary(record_of: RecordOf) -> None:
    canary = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api@sha256:" + "c" * 64
    record = record_of(
        "prod",
        overrides={
            "visionrag:workloads": {
                **EXTERNAL_IDP,
                "quotas": {"tenantClaim": "org.id", "chatPerDay": 77},
                "llmModeration": False,
                "canary": {"image": canary, "weight": 10},
            }
        },
    )
    for deployment in ("api", "api-canary"):
        env = _env(record, deployment)
        assert env["AUTH_TENANT_CLAIM"] == "org.id" and env["QUOTA_CHAT_PER_DAY"] == "77"
        assert env["CHAT_MODERATION_ENABLED"] == "false"
        assert env["QUOTA_SEARCH_PER_DAY"] == str(TIER_DEFAULTS["prod"]["workloads"]["quotas"]["searchPerDay"])


@pytest.mark.parametrize(
    ("workloads", "key", "fragment"),
    [
        ({"quotas": {"searchPerDay": 0}}, "workloads.quotas.searchPerDay", "greater than or equal to 1"),
        ({"quotas": {"llmTokensPerDay": 10**10}}, "workloads.quotas.llmTokensPerDay", "less than or equal to"),
        ({"quotas": {"uploadMbPerDay": 2**21}}, "workloads.quotas.uploadMbPerDay", "less than or equal to 1048576"),
        ({"quotas": {"metricMaxTenants": 5000}}, "workloads.quotas.metricMaxTenants", "less than or equal to 1000"),
        ({"quotas": {"perHour": 5}}, "workloads.quotas.perHour", "unknown key"),
        ({**EXTERNAL_IDP, "quotas": {"tenantClaim": "sub"}}, "workloads.quotas.tenantClaim", "not a tenant claim"),
        ({**EXTERNAL_IDP, "quotas": {"tenantClaim": "a b"}}, "workloads.quotas.tenantClaim", "not a tenant claim"),
        # The stack's Cognito pool puts no custom claim into access tokens: refused, naming the way out.
        ({"quotas": {"tenantClaim": "custom:tenant"}}, "workloads.quotas.tenantClaim", "needs an external issuer"),
        ({"llmModeration": "maybe"}, "workloads.llmModeration", "boolean"),
    ],
)
def test_bad_quotas_are_config_errors_before_the_engine_starts(
    monkeypatch: pytest.MonkeyPatch, workloads: dict[str, Any], key: str, fragment: str
) -> None:
    def spy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine started although the config is invalid")

    monkeypatch.setattr(offline, "_run", spy)
    with pytest.raises(ConfigError) as exc:
        run_stack("staging", overrides={"visionrag:workloads": workloads})
    problems = dict(exc.value.problems)
    assert key in problems, exc.value
    assert fragment in problems[key], problems[key]
