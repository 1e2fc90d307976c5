"""OIDC bearer-token validation against the issuer's JWKS (PyJWT).

What a token must pass: a `kid` we can find in the JWKS (refetched, throttled, when unknown), an algorithm from
the configured asymmetric allow-list that matches the key (so `none` and "HS256 signed with the public key"
never verify), a valid signature, `exp`/`nbf`/`iat` within a small leeway, the configured `iss` and `aud`, and a
`sub`. With AUTH_PROVIDER=cognito (the stack's own Amazon Cognito user pool) the audience check reads
differently, for that issuer only: Cognito access tokens carry no `aud`, but `client_id` (the app client) and
`token_use: access`; the token must have both, equal to AUDIENCE and "access", and no `aud` (so an ID token,
whose `aud` is the client id, is refused). Every other issuer keeps the strict `aud` check.
The JWKS is cached for `auth_jwks_cache_ttl_s`; if the issuer is down the cached keys keep working, and
with no cached key the request gets 503 (the dependency is down) rather than 401 (the token is bad).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from app.api.settings import SAFE_JWT_ALGORITHMS, Settings
from app.core.logging import get_logger
from app.core.resilience import DependencyUnavailable

log = get_logger(__name__)


class AuthError(Exception):
    """The credentials are missing or invalid (401). The message is safe to return to the client."""


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset[str] = frozenset()
    # Who shares cache entries and quotas with this caller: the tenant claim's value, else the subject.
    scope: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def roles_from(claims: Mapping[str, Any], path: str) -> frozenset[str]:
    value = _claim(claims, path)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(str(item) for item in value if isinstance(item, str | int))
    return frozenset()


class JwksCache:
    """The issuer's signing keys by `kid`, fetched with a timeout, cached, refreshed on unknown `kid`."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl_s: float = 600.0,
        timeout_s: float = 2.0,
        min_refresh_interval_s: float = 10.0,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            response = await self._client.get(self.url, timeout=self._timeout_s)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks_fetch_failed", url=self.url, error=type(exc).__name__)
            raise DependencyUnavailable("auth", f"JWKS fetch failed: {type(exc).__name__}") from exc
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str) or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                log.warning("jwks_key_skipped", kid=kid, kty=jwk.get("kty"))
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("jwks_refreshed", keys=len(keys))

    async def get(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl_s
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self._ttl_s
            if kid in self._keys and not stale:
                return self._keys[kid]
            # Forged kids must not turn every request into an issuer round-trip.
            may_fetch = stale or now - self._attempted_at >= self._min_refresh_interval_s
            if may_fetch:
                try:
                    await self._fetch()
                except DependencyUnavailable:
                    if not self._keys:
                        raise
                    # Issuer outage: keep serving the keys we already trust.
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("unknown signing key")
        return key


class TokenVerifier:
    """Verifies tokens; a verified token is remembered (by hash) until it expires, at most `cache_ttl_s`.

    The short cap bounds how long a token keeps working after its key is pulled from the JWKS; the signature
    check is the most expensive step of an authenticated request, and clients reuse one token for many calls.
    """

    def __init__(
        self, settings: Settings, jwks: JwksCache, *, cache_ttl_s: float = 60.0, cache_size: int = 10_000
    ) -> None:
        self._jwks = jwks
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._cache_ttl_s = cache_ttl_s
        self._cache_size = cache_size
        self._issuer = settings.auth_issuer_url
        # Settings guarantees "cognito" only ever comes with a Cognito user pool issuer (COGNITO_ISSUER).
        self._cognito = settings.auth_provider == "cognito"
        self._audience = settings.auth_audience
        self._algorithms = [alg for alg in settings.auth_algorithms if alg in SAFE_JWT_ALGORITHMS]
        self._leeway = settings.auth_leeway_s
        self._roles_claim = settings.auth_roles_claim
        self._tenant_claim = settings.auth_tenant_claim

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        now = time.time()
        if cached is not None:
            if now < cached[0]:
                self._cache.move_to_end(digest)
                return cached[1]
            del self._cache[digest]
        principal, exp = await self._verify(token)
        self._cache[digest] = (min(exp, now + self._cache_ttl_s), principal)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthError("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        jwk = await self._jwks.get(kid)
        # The key decides the algorithm: a token may not pick a different one (alg confusion).
        if jwk.algorithm_name != alg:
            raise AuthError("token algorithm does not match its key")
        # Cognito access tokens: no `aud` expected (PyJWT then refuses a token that has one), `client_id` instead.
        required = (
            ["exp", "iat", "iss", "client_id", "token_use", "sub"]
            if self._cognito
            else ["exp", "iat", "iss", "aud", "sub"]
        )
        try:
            claims = jwt.decode(
                token,
                key=jwk.key,
                algorithms=[alg],
                audience=None if self._cognito else self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": required, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer not accepted") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks required claim {exc.claim!r}") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        if self._cognito:
            if claims.get("token_use") != "access":
                raise AuthError("token is not an access token")
            if claims.get("client_id") != self._audience:
                raise AuthError("token audience not accepted")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token subject invalid")
        scope = f"sub:{sub}"
        if self._tenant_claim:
            tenant = _claim(claims, self._tenant_claim)
            scope = f"tenant:{tenant}" if isinstance(tenant, str) and tenant else f"sub:{sub}"
        principal = Principal(sub=sub, roles=roles_from(claims, self._roles_claim), scope=scope, claims=claims)
        return principal, float(claims["exp"])
