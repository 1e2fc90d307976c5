"""`python -m app.embedder`: one process per GPU (the model is not shared across workers)."""

from __future__ import annotations

import uvicorn

from app.core.logging import configure_logging
from app.core.telemetry import setup_sentry, setup_tracing
from app.embedder.app import create_app
from app.embedder.settings import get_embedder_settings


def main() -> None:
    settings = get_embedder_settings()
    configure_logging(settings.log_level.upper())
    setup_sentry(settings, service=settings.otel_service_name)
    app = create_app(settings)
    # Server spans only: the embedder calls nobody, it continues the api's or the worker's trace (traceparent).
    setup_tracing(settings, app=app, clients=())
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # Keep the JSON handler configure_logging installed: uvicorn's default dictConfig would replace it.
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
