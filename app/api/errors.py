"""Exception → JSON `{"detail": ...}` mapping. Nothing returns a stack trace; 5xx carry the request id."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.api.llm import BudgetExceeded, ContentRejected
from app.api.quotas import QuotaExceeded
from app.api.ratelimit import RateLimited
from app.api.uploads import UploadRejected
from app.core.logging import get_logger
from app.core.metrics import CHAT_REQUESTS, DEPENDENCY_ERRORS, INDEX_UPLOADS, RATE_LIMITED
from app.core.resilience import DependencyUnavailable
from app.services.embedder_client import EmbedderRejected, EmbedderUnavailable

log = get_logger(__name__)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DependencyUnavailable)
    async def _dependency(request: Request, exc: DependencyUnavailable) -> JSONResponse:
        DEPENDENCY_ERRORS.labels(dependency=exc.dependency).inc()
        log.warning("dependency_unavailable", dependency=exc.dependency, reason=exc.reason)
        return JSONResponse(
            {"detail": f"{exc.dependency} unavailable: {exc.reason}", "request_id": _request_id(request)},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(EmbedderUnavailable)
    async def _embedder_down(request: Request, exc: EmbedderUnavailable) -> JSONResponse:
        return await _dependency(request, DependencyUnavailable("embedder", "unavailable"))

    @app.exception_handler(EmbedderRejected)
    async def _embedder_rejected(request: Request, exc: EmbedderRejected) -> JSONResponse:
        return JSONResponse({"detail": "the embedder rejected the input"}, status_code=422)

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        RATE_LIMITED.labels(scope=exc.scope).inc()
        return JSONResponse(
            {"detail": f"rate limit exceeded ({exc.scope})"},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(BudgetExceeded)
    async def _budget(request: Request, exc: BudgetExceeded) -> JSONResponse:
        RATE_LIMITED.labels(scope="token_budget").inc()
        return JSONResponse(
            {"detail": "daily token budget exhausted"},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(QuotaExceeded)
    async def _quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)}
        if exc.kind.startswith("upload"):
            # Refused before or after the body: either way do not keep a half-read upload connection.
            headers["Connection"] = "close"
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)

    @app.exception_handler(ContentRejected)
    async def _moderation(request: Request, exc: ContentRejected) -> JSONResponse:
        CHAT_REQUESTS.labels(outcome="question_rejected").inc()
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route matching the path only; /documents/{id} has
            # GET and DELETE on two routes. Allow must list every method the resource supports (RFC 9110 15.5.6):
            # ask the router, through its public `matches`, which methods fully match this path.
            methods = [
                method
                for method in _METHODS
                if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in app.router.routes)
            ]
            exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(methods)})
        return await http_exception_handler(request, exc)

    @app.exception_handler(UploadRejected)
    async def _upload(request: Request, exc: UploadRejected) -> JSONResponse:
        INDEX_UPLOADS.labels(outcome=f"rejected_{exc.reason}").inc()
        # The client may still be sending: tell it to stop rather than keep a connection half-read.
        headers = {"Connection": "close"}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
