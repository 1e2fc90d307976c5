"""`python -m app.embedder`: one process per GPU (the model is not shared across workers)."""

from __future__ import annotations

import logging

import uvicorn

from app.embedder.app import create_app
from app.embedder.settings import get_embedder_settings


def main() -> None:
    settings = get_embedder_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
