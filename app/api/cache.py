"""Redis response cache for search and chat.

Keys are `visionrag:cache:<kind>:<collection version>:<sha256 of (scope, normalised query, params)>`: the
identity scope keeps one caller's (or tenant's) answers from being served to another, and the collection
version changes whenever the index does (alias target, schema version and point count), so stale entries are
never read again and simply expire. The cache is an optimisation: Redis errors are logged and treated as misses.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

from redis.asyncio import Redis

from app.core.logging import get_logger
from app.core.metrics import CACHE_LOOKUPS

log = get_logger(__name__)
_SPACES = re.compile(r"\s+")


def normalise_query(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


class ResponseCache:
    def __init__(self, redis: Redis, *, ttl_s: int, enabled: bool = True, prefix: str = "visionrag:cache") -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self.enabled = enabled
        self.prefix = prefix

    def key(self, kind: str, *, scope: str, version: str, query: str, **params: Any) -> str:
        material = json.dumps({"scope": scope, "q": normalise_query(query), "p": params}, sort_keys=True, default=str)
        digest = hashlib.sha256(material.encode()).hexdigest()
        return f"{self.prefix}:{kind}:{version}:{digest}"

    async def get(self, kind: str, key: str) -> Any | None:
        if not self.enabled:
            return None
        try:
            raw = await self._redis.get(key)
        except Exception as exc:
            log.warning("cache_get_failed", error=type(exc).__name__)
            CACHE_LOOKUPS.labels(kind=kind, result="error").inc()
            return None
        CACHE_LOOKUPS.labels(kind=kind, result="hit" if raw is not None else "miss").inc()
        return json.loads(raw) if raw is not None else None

    async def set(self, key: str, value: Any) -> None:
        if not self.enabled:
            return
        try:
            await self._redis.set(key, json.dumps(value, default=str), ex=self.ttl_s)
        except Exception as exc:
            log.warning("cache_set_failed", error=type(exc).__name__)
