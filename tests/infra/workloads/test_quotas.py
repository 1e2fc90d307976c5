"""infra/workloads/quotas.py: the api's quotas as pod env. Every name it sets is a field (or alias) the app's
Settings reads; bounds refuse values that would limit nothing; the tenant claim must be able to name a tenant."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.settings import Settings
from infra.workloads.quotas import MAX_REQUESTS_PER_DAY, ApiQuotas, check_tenant_claim

BASE: dict[str, Any] = {
    "search_per_day": 10,
    "chat_per_day": 5,
    "llm_tokens_per_day": 1000,
    "upload_pages_per_day": 20,
    "upload_mb_per_day": 30,
}


def _settings_names() -> set[str]:
    names = {name.upper() for name in Settings.model_fields}
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        for choice in getattr(alias, "choices", []):
            names.add(str(choice).upper())
    return names


def test_every_env_name_is_an_app_setting() -> None:
    env = ApiQuotas(**BASE, tenant_claim="custom:tenant").env()
    assert set(env) <= _settings_names(), set(env) - _settings_names()
    assert env["AUTH_TENANT_CLAIM"] == "custom:tenant" and env["CHAT_MODERATION_ENABLED"] == "true"
    # No env name that the no-plaintext-secrets policy would read as a credential.
    assert not [name for name in env if "TOKEN" in name or "SECRET" in name]


def test_no_tenant_claim_sets_none_and_moderation_can_be_off() -> None:
    env = ApiQuotas(**BASE, moderation=False).env()
    assert "AUTH_TENANT_CLAIM" not in env and env["CHAT_MODERATION_ENABLED"] == "false"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"search_per_day": 0}, "search_per_day"),
        ({"chat_per_day": MAX_REQUESTS_PER_DAY + 1}, "chat_per_day"),
        ({"metric_max_tenants": -1}, "metric_max_tenants"),
        ({"tenant_claim": "email"}, "tenant_claim"),
    ],
)
def test_out_of_range_values_are_refused(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ApiQuotas(**{**BASE, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize("claim", ["tenant", "custom:tenant", "org.id", "https_claims.tenant_id"])
def test_claim_names_and_paths_are_accepted(claim: str) -> None:
    check_tenant_claim(claim)


@pytest.mark.parametrize("claim", ["", "sub", "client_id", "a.b.c.d.e", "9tenant", "ten ant", "x" * 65])
def test_claims_that_cannot_name_a_tenant_are_refused(claim: str) -> None:
    with pytest.raises(ValueError, match="not a tenant claim"):
        check_tenant_claim(claim)
