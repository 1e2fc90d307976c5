"""Rate limits per client IP and per identity, counted in Redis so every replica shares them (`limits`).

- The client IP is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`: then X-Forwarded-For is walked
  from the right, skipping trusted hops, and the first untrusted address is the client. A client can therefore
  prepend whatever it likes to X-Forwarded-For without changing the address it is counted under.
- Every protected route counts against a general per-IP limit (`RATE_LIMIT_PER_MINUTE`, checked before the
  token so credential stuffing is throttled too); search, chat and upload have their own limits per identity
  (`sub`), so one caller cannot spend another's allowance and a botnet of tokens still meets the IP limit.
- Exceeding a limit is 429 with `Retry-After` (seconds until the window frees a slot).
We use `limits` directly rather than slowapi's decorator because the key (identity) is only known after auth,
inside a dependency; slowapi is a thin wrapper over the same strategies and storage.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.core.logging import get_logger
from app.core.resilience import DependencyUnavailable

log = get_logger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after_s: int) -> None:
        super().__init__(f"rate limit exceeded for {scope}")
        self.scope = scope
        self.retry_after_s = retry_after_s


def parse_networks(entries: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """The address to count a request under (see module doc)."""
    if not peer:
        return "unknown"

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not trusted or not is_trusted(peer) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            # Garbage from an untrusted hop: nothing to its left can be believed either.
            return peer
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


@dataclass(frozen=True)
class Limits:
    ip: list[RateLimitItem]
    search: list[RateLimitItem]
    chat: list[RateLimitItem]
    upload: list[RateLimitItem]

    @classmethod
    def from_strings(cls, *, per_minute: int, search: str, chat: str, upload: str) -> Limits:
        return cls(
            ip=[RateLimitItemPerMinute(per_minute)],
            search=parse_many(search),
            chat=parse_many(chat),
            upload=parse_many(upload),
        )


class RateLimiter:
    def __init__(self, storage_url: str, limits: Limits, *, timeout_s: float = 1.0, fail_open: bool = False) -> None:
        uri = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        self.storage = RedisStorage(
            uri,
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix="visionrag:rl",
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self.limits = limits
        self.fail_open = fail_open

    async def hit(self, scope: str, items: Sequence[RateLimitItem], *keys: str) -> None:
        """Count one request for (scope, key) against every item; raise RateLimited on the first exceeded."""
        for item in items:
            try:
                allowed = await self.strategy.hit(item, scope, *keys)
                if allowed:
                    continue
                stats = await self.strategy.get_window_stats(item, scope, *keys)
            except Exception as exc:
                log.warning("rate_limit_storage_error", scope=scope, error=type(exc).__name__)
                if self.fail_open:
                    return
                raise DependencyUnavailable("redis", "rate limit storage unreachable") from exc
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(scope, retry_after)
