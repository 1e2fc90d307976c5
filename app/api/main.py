"""The FastAPI app factory.

`create_app()` reads Settings (refusing unsafe ones outside dev), wires the middleware stack (outermost first:
security headers → request id/access log/body cap → CORS → Prometheus instrumentation), the routers and the
error handlers; the lifespan builds the clients and closes them on shutdown. gunicorn loads
`app.api.main:create_app()`; `uvicorn --factory app.api.main:create_app` works for local runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_fastapi_instrumentator import Instrumentator

from app.api.container import AppServices
from app.api.errors import install_error_handlers
from app.api.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from app.api.openapi import install_openapi
from app.api.routers import admin, chat, documents, health, index, search, subjects
from app.api.settings import Settings, get_settings
from app.core.logging import configure_logging, get_logger
from app.core.metrics import serve_metrics
from app.core.settings import SettingsError
from app.core.telemetry import setup_sentry, setup_tracing

log = get_logger(__name__)
# Set by gunicorn.conf.py: the master serves the aggregated multiprocess metrics, workers must not bind 9090.
METRICS_BY_MASTER_ENV = "VISIONRAG_METRICS_SERVED_BY_MASTER"


def create_app(settings: Settings | None = None, *, middleware: bool = True) -> FastAPI:
    """Build the API. `middleware=False` exists only for benchmarks/api_overhead.py (the unhardened baseline)."""
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as exc:
            # One line naming every bad key beats a pydantic traceback in a crash-looping pod's log.
            raise SystemExit(f"visionrag-api: {exc}") from None
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = AppServices.build(settings)
        app.state.services = services
        metrics_server: Any = None
        if settings.metrics_enabled and not os.environ.get(METRICS_BY_MASTER_ENV):
            metrics_server = serve_metrics(settings.metrics_port)
        try:
            await services.start()
        except Exception as exc:
            log.warning("startup_dependency_failed", error=type(exc).__name__)
        log.info("api_started", environment=settings.environment)
        try:
            yield
        finally:
            await services.aclose()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            log.info("api_stopped")

    docs = settings.api_docs_enabled
    app = FastAPI(
        title="visionrag API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health, index, search, chat, documents, admin, subjects):
        app.include_router(module.router)
    install_openapi(app, max_upload_files=settings.max_upload_files)

    if middleware:
        if settings.metrics_enabled:
            Instrumentator(
                should_group_status_codes=False,
                excluded_handlers=["/health"],
                should_instrument_requests_inprogress=True,
                inprogress_labels=True,
            ).instrument(app)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            allow_credentials=False,
            max_age=600,
        )
        app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_kb * 1024)
        app.add_middleware(
            SecurityHeadersMiddleware,
            hsts_max_age_s=settings.hsts_max_age_s,
            docs_paths=("/docs", "/openapi.json") if docs else (),
        )
        setup_tracing(settings, app=app)
        setup_sentry(settings, service=settings.otel_service_name)
    return app
