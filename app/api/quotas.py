"""Quotas per period, counted in Redis so every replica and worker shares them.

Rate limits (app/api/ratelimit.py) smooth bursts; quotas cap what one party may consume in a day (UTC):
- per tenant (the AUTH_TENANT_CLAIM value; a caller whose token has none counts as its own subject — the
  `Principal.scope` that the response cache and the LLM token budget already use): search requests
  (QUOTA_SEARCH_PER_DAY) and chat requests (QUOTA_CHAT_PER_DAY); LLM tokens are the per-scope budget in
  app/api/llm.py (CHAT_DAILY_TOKEN_BUDGET);
- per identity (the JWT `sub`): uploaded PDF pages and bytes (QUOTA_UPLOAD_PAGES_PER_DAY, QUOTA_UPLOAD_MB_PER_DAY),
  reserved after the upload is validated and before anything is stored, refunded when storing fails.
A quota that is unset is not counted at all. Counting is one Lua script per charge: every counter of the charge is
checked and, only if all fit, incremented (all or nothing, atomic in Redis), so concurrent requests on any replica
can never pass a limit together and a refused charge leaves no trace. The keys of one charge share a hash tag, so
the script is valid on a cluster-mode Redis too. Exceeding a quota is 429 with Retry-After (seconds to UTC
midnight, when the period's keys roll over).

Usage is exported per tenant as `visionrag_tenant_usage_total{tenant, kind}`. Tenant ids come from the identity
provider, not the caller, but their number is still not ours to bound, so the label is bounded here: callers
without a tenant are `_none` (subjects are never labels: unbounded and personal), a tenant id that is not a short
plain token is `_invalid`, and each process labels at most QUOTA_METRIC_MAX_TENANTS distinct tenants, the rest as
`_other` (series per process <= (max tenants + 3) x kinds; the sums over all labels stay exact).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from redis.asyncio import Redis

from app.api.auth import Principal
from app.core.metrics import RATE_LIMITED, TENANT_USAGE

Kind = Literal["search", "chat", "llm_tokens", "upload_pages", "upload_bytes"]
KINDS: tuple[Kind, ...] = ("search", "chat", "llm_tokens", "upload_pages", "upload_bytes")
PREFIX = "visionrag:quota"
# Counters outlive their day by one, so a clock skew between replicas cannot resurrect a spent quota.
TTL_S = 2 * 86400
_TENANT_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")

# KEYS: the counters; ARGV: ttl, then (amount, limit) per key. Returns 0 when charged, else the 1-based index of
# the first counter that would pass its limit (nothing is incremented then).
_CHARGE = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used + tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[2 * i])
  redis.call('EXPIRE', key, ARGV[1])
end
return 0
"""


class QuotaExceeded(Exception):
    def __init__(self, kind: Kind, *, limit: int, requested: int, used: int, retry_after_s: int) -> None:
        unit = {"upload_bytes": "bytes", "upload_pages": "pages", "llm_tokens": "tokens"}.get(kind, "requests")
        super().__init__(
            f"daily {kind.replace('_', ' ')} quota exceeded: {used} of {limit} {unit} used today, "
            f"this request needs {requested}; it resets at 00:00 UTC"
        )
        self.kind = kind
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, kw_only=True)
class QuotaLimits:
    search_per_day: int | None = None
    chat_per_day: int | None = None
    upload_pages_per_day: int | None = None
    upload_bytes_per_day: int | None = None

    def limit(self, kind: Kind) -> int | None:
        return {
            "search": self.search_per_day,
            "chat": self.chat_per_day,
            "upload_pages": self.upload_pages_per_day,
            "upload_bytes": self.upload_bytes_per_day,
        }.get(kind)


def seconds_to_utc_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


class TenantLabels:
    """The bounded `tenant` label of a Principal.scope (see module doc)."""

    def __init__(self, max_tenants: int) -> None:
        self.max_tenants = max_tenants
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, scope: str) -> str:
        kind, _, value = scope.partition(":")
        if kind != "tenant":
            return "_none"
        if not _TENANT_LABEL.match(value):
            return "_invalid"
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.max_tenants:
                self._seen.add(value)
                return value
        return "_other"


@dataclass(frozen=True)
class Reservation:
    """What one charge counted: refund() takes exactly this back."""

    keys: tuple[str, ...] = ()
    amounts: tuple[int, ...] = ()


class Quotas:
    def __init__(self, redis: Redis, limits: QuotaLimits, *, metric_max_tenants: int = 50) -> None:
        self._redis = redis
        self.limits = limits
        self.tenant_label = TenantLabels(metric_max_tenants)
        self._script: Any = redis.register_script(_CHARGE)

    @staticmethod
    def key(owner: str, kind: Kind, now: datetime) -> str:
        # `{owner}` is the hash tag: one charge's keys live in one slot.
        return f"{PREFIX}:{{{owner}}}:{kind}:{now:%Y%m%d}"

    async def _charge(self, owner: str, amounts: dict[Kind, int]) -> Reservation:
        now = datetime.now(UTC)
        counted = [(k, n, limit) for k, n in amounts.items() if (limit := self.limits.limit(k)) is not None]
        if not counted:
            return Reservation()
        keys = [self.key(owner, kind, now) for kind, _, _ in counted]
        argv: list[int] = [TTL_S]
        for _, amount, limit in counted:
            argv += [amount, limit]
        refused = int(await self._script(keys=keys, args=argv))
        if refused:
            kind, amount, limit = counted[refused - 1]
            used = int(await self._redis.get(keys[refused - 1]) or 0)
            RATE_LIMITED.labels(scope=f"quota_{kind}").inc()
            raise QuotaExceeded(
                kind, limit=limit, requested=amount, used=used, retry_after_s=seconds_to_utc_midnight(now)
            )
        return Reservation(tuple(keys), tuple(amount for _, amount, _ in counted))

    async def refund(self, reservation: Reservation) -> None:
        if not reservation.keys:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, amount in zip(reservation.keys, reservation.amounts, strict=True):
                pipe.decrby(key, amount)
            await pipe.execute()

    async def charge_request(self, kind: Literal["search", "chat"], user: Principal) -> None:
        """One search or chat request against the caller's tenant (else subject) quota."""
        await self._charge(user.scope, {kind: 1})
        TENANT_USAGE.labels(tenant=self.tenant_label(user.scope), kind=kind).inc()

    def record_tokens(self, user: Principal, tokens: int) -> None:
        """LLM tokens are counted by the token budget (app/api/llm.py); this only exports them per tenant."""
        TENANT_USAGE.labels(tenant=self.tenant_label(user.scope), kind="llm_tokens").inc(tokens)

    async def check_upload_headroom(self, user: Principal) -> None:
        """Refuse before the body is read when the identity has nothing left today (a cheap early 429).
        A read, not a charge: the charge after validation is what counts, atomically."""
        now = datetime.now(UTC)
        owner = f"sub:{user.sub}"
        kinds: tuple[Kind, ...] = ("upload_pages", "upload_bytes")
        limits = {k: limit for k in kinds if (limit := self.limits.limit(k)) is not None}
        if not limits:
            return
        values = await self._redis.mget([self.key(owner, k, now) for k in limits])
        for (kind, limit), raw in zip(limits.items(), values, strict=True):
            used = int(raw or 0)
            if used >= limit:
                RATE_LIMITED.labels(scope=f"quota_{kind}").inc()
                raise QuotaExceeded(
                    kind, limit=limit, requested=1, used=used, retry_after_s=seconds_to_utc_midnight(now)
                )

    async def charge_upload(self, user: Principal, *, pages: int, size_bytes: int) -> Reservation:
        """Reserve an upload's pages and bytes against the identity's daily quota, all or nothing."""
        return await self._charge(f"sub:{user.sub}", {"upload_pages": pages, "upload_bytes": size_bytes})

    def record_upload(self, user: Principal, *, pages: int, size_bytes: int) -> None:
        """Export a stored upload per tenant (after it is stored: a refunded reservation is not usage)."""
        label = self.tenant_label(user.scope)
        TENANT_USAGE.labels(tenant=label, kind="upload_pages").inc(pages)
        TENANT_USAGE.labels(tenant=label, kind="upload_bytes").inc(size_bytes)

    async def used(self, owner: str, kind: Kind) -> int:
        return int(await self._redis.get(self.key(owner, kind, datetime.now(UTC))) or 0)
