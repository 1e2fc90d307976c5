"""FastAPI dependencies, as `Annotated` aliases the routers use (full-stack-fastapi-template style)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import AuthError, Principal
from app.api.container import AppServices
from app.api.ratelimit import client_ip
from app.api.settings import Settings

bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT", description="OIDC access token")


def get_services(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[AppServices, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def limit_ip(request: Request, services: ServicesDep) -> str:
    """General per-IP limit on every protected route, before the token is even looked at."""
    ip = client_ip(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        services.trusted_proxies,
    )
    request.state.client_ip = ip
    if services.settings.rate_limit_enabled:
        await services.limiter.hit("ip", services.limiter.limits.ip, ip)
    return ip


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    settings = services.settings
    if not settings.auth_enabled:
        # Only reachable in dev: Settings refuses AUTH_ENABLED=false elsewhere.
        principal = Principal(sub="dev-user", roles=frozenset({settings.auth_admin_role}), scope="sub:dev-user")
    else:
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise unauthorized("missing bearer token")
        try:
            principal = await services.verifier.verify(credentials.credentials)
        except AuthError as exc:
            raise unauthorized(str(exc)) from None
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(sub=principal.sub)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def require_admin(user: CurrentUser, settings: SettingsDep) -> Principal:
    if not user.has_role(settings.auth_admin_role):
        raise HTTPException(403, f"requires role {settings.auth_admin_role!r}")
    return user


AdminUser = Annotated[Principal, Depends(require_admin)]


def _route_limit(scope: str):  # type: ignore[no-untyped-def]
    async def limit(request: Request, user: CurrentUser, services: ServicesDep) -> None:
        if services.settings.rate_limit_enabled:
            items = getattr(services.limiter.limits, scope)
            # Per identity here; per IP is the general limit every protected route already counted (limit_ip).
            await services.limiter.hit(scope, items, "sub", user.sub)
        if scope in ("search", "chat"):
            # The daily request quota of the caller's tenant (app/api/quotas.py), after the burst limit.
            await services.resilience.call(
                "redis",
                lambda: services.quotas.charge_request(scope, user),  # type: ignore[arg-type]
                timeout_s=services.settings.redis_timeout_s * 2,
                idempotent=False,
            )

    limit.__name__ = f"limit_{scope}"
    return limit


limit_search = _route_limit("search")
limit_chat = _route_limit("chat")
limit_upload = _route_limit("upload")

# Every router except health is built with these: per-IP limit first, then a valid token.
PROTECTED = [Depends(limit_ip), Depends(get_principal)]
