"""The published OpenAPI schema, completed with what depends on Settings.

The routers are module-level, so a limit that is a setting cannot be in their static declarations: the upload
body's `maxItems` is MAX_UPLOAD_FILES of this app (more files answer 413, so the schema must say so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

UPLOAD_PATH = "/index"


def install_openapi(app: FastAPI, *, max_upload_files: int) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # FastAPI's own, cached on app.openapi_schema
            body = schema["paths"][UPLOAD_PATH]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
            body["properties"]["files"]["maxItems"] = max_upload_files
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
