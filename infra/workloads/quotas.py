"""The api's daily quotas and LLM safety as stack settings: the pod environment that sets them, and the ranges a
stack may choose.

The app owns the quotas and their meaning (app/api/quotas.py, app/api/llm.py; app/api/settings.py QUOTA_*,
CHAT_DAILY_TOKEN_BUDGET alias QUOTA_LLM_PER_DAY, AUTH_TENANT_CLAIM, CHAT_MODERATION_ENABLED): search and chat
requests and LLM tokens per tenant per UTC day (the tenant is the value of the token claim AUTH_TENANT_CLAIM;
without one, each subject is its own tenant), uploaded PDF pages and MiB per identity (JWT `sub`) per UTC day,
and moderation of the question and the answer. A stack chooses the numbers within the bounds below; every quota
is always set (a deployed api never runs unmetered). stacks/config/workloads.py validates `workloads.quotas`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Upper bounds: above them a quota limits nothing (and a typo'd extra digit is likelier).
MAX_REQUESTS_PER_DAY = 10_000_000
MAX_LLM_TOKENS_PER_DAY = 1_000_000_000
MAX_UPLOAD_PAGES_PER_DAY = 1_000_000
MAX_UPLOAD_MB_PER_DAY = 1_048_576  # 1 TiB
# app/api/settings.py QUOTA_METRIC_MAX_TENANTS: the bound on the metric's `tenant` label values per process.
MAX_METRIC_TENANTS = 1000
# A claim name, or a dotted path into nested claims (app/api/auth.py _claim splits on '.'); Cognito custom
# attributes look like "custom:tenant".
TENANT_CLAIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_:-]{0,63}(\.[A-Za-z_][A-Za-z0-9_:-]{0,63}){0,3}$")
# Claims that identify a person or a client, never a tenant: quotas keyed on them would be per-user anyway.
NOT_TENANT_CLAIMS = frozenset({"sub", "iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "username", "email"})

_BOUNDS = {
    "search_per_day": MAX_REQUESTS_PER_DAY,
    "chat_per_day": MAX_REQUESTS_PER_DAY,
    "llm_tokens_per_day": MAX_LLM_TOKENS_PER_DAY,
    "upload_pages_per_day": MAX_UPLOAD_PAGES_PER_DAY,
    "upload_mb_per_day": MAX_UPLOAD_MB_PER_DAY,
}


def check_tenant_claim(value: str) -> None:
    """ValueError unless `value` is a claim name (or dotted path) that can identify a tenant."""
    if not TENANT_CLAIM.match(value) or value in NOT_TENANT_CLAIMS:
        raise ValueError(
            f"{value!r} is not a tenant claim; allowed: a claim name or dotted path of up to 4 names "
            f"([A-Za-z_][A-Za-z0-9_:-]*, e.g. 'tenant', 'custom:tenant', 'org.id'), not one of "
            f"{', '.join(sorted(NOT_TENANT_CLAIMS))}"
        )


@dataclass(frozen=True, kw_only=True)
class ApiQuotas:
    search_per_day: int  # QUOTA_SEARCH_PER_DAY, per tenant
    chat_per_day: int  # QUOTA_CHAT_PER_DAY, per tenant
    llm_tokens_per_day: int  # QUOTA_LLM_PER_DAY (alias of CHAT_DAILY_TOKEN_BUDGET), per tenant
    upload_pages_per_day: int  # QUOTA_UPLOAD_PAGES_PER_DAY, per identity
    upload_mb_per_day: int  # QUOTA_UPLOAD_MB_PER_DAY, per identity
    metric_max_tenants: int = 50  # QUOTA_METRIC_MAX_TENANTS
    tenant_claim: str | None = None  # AUTH_TENANT_CLAIM; None: every subject is its own tenant
    moderation: bool = True  # CHAT_MODERATION_ENABLED: the question and the answer

    def __post_init__(self) -> None:
        for name, top in _BOUNDS.items():
            value = getattr(self, name)
            if not 1 <= value <= top:
                raise ValueError(f"{name}: {value} must be between 1 and {top}")
        if not 0 <= self.metric_max_tenants <= MAX_METRIC_TENANTS:
            raise ValueError(
                f"metric_max_tenants: {self.metric_max_tenants} must be between 0 and {MAX_METRIC_TENANTS}"
            )
        if self.tenant_claim is not None:
            try:
                check_tenant_claim(self.tenant_claim)
            except ValueError as e:
                raise ValueError(f"tenant_claim: {e}") from None

    def env(self) -> dict[str, str]:
        """The api container's environment for these quotas (names are app/api/settings.py fields)."""
        return {
            "QUOTA_SEARCH_PER_DAY": str(self.search_per_day),
            "QUOTA_CHAT_PER_DAY": str(self.chat_per_day),
            # CHAT_DAILY_TOKEN_BUDGET's other name: policies read env names with TOKEN in them as credentials.
            "QUOTA_LLM_PER_DAY": str(self.llm_tokens_per_day),
            "QUOTA_UPLOAD_PAGES_PER_DAY": str(self.upload_pages_per_day),
            "QUOTA_UPLOAD_MB_PER_DAY": str(self.upload_mb_per_day),
            "QUOTA_METRIC_MAX_TENANTS": str(self.metric_max_tenants),
            "CHAT_MODERATION_ENABLED": "true" if self.moderation else "false",
            **({"AUTH_TENANT_CLAIM": self.tenant_claim} if self.tenant_claim else {}),
        }
