"""The error responses every route declares in the OpenAPI schema, from one place.

The frontend's typed client is generated from the schema, so a status a route can answer must be in it with its
body (`tests/app/api/test_contract_schemathesis.py` runs schemathesis with all checks under gunicorn to hold the
schema to that). Where each status comes from:
  400  a body that cannot be parsed (JSON, multipart framing, a non-numeric Content-Length)
  401  no/invalid bearer token (deps.get_principal)             403  not an admin (deps.require_admin)
  413  body over MAX_REQUEST_BODY_KB (middleware), or an upload over its caps (uploads.UploadSession)
  415  an upload that is not multipart, or a file that is not a PDF
  422  request validation (FastAPI), or a PDF / chat message rejected by its checks
  429  per-IP / per-identity rate limit or the daily token budget, with Retry-After
  503  a dependency is down (Redis for the limiter, the JWKS for auth, Qdrant, S3, the embedder, the LLM)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ApiError(BaseModel):
    """Every error body: `{"detail": ...}` (a message, or FastAPI's list of validation errors)."""

    detail: str | list[dict[str, Any]]
    request_id: str | None = Field(default=None, description="set on 5xx answers: quote it to the operator")


_DESCRIPTIONS: dict[int, str] = {
    400: "the body could not be parsed",
    401: "missing or invalid bearer token",
    403: "the token lacks the admin role",
    413: "request body too large",
    415: "unsupported media type",
    422: "the request failed validation",
    429: "rate limit exceeded",
    503: "a dependency is unavailable",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}

# Every route behind deps.PROTECTED: the per-IP limiter (Redis: 429/503) and the token check (JWKS: 401/503) run
# first, and the body cap of the middleware applies to any request that carries a body.
PROTECTED_STATUSES = (401, 413, 429, 503)
ADMIN_STATUSES = (*PROTECTED_STATUSES, 403)
BODY_STATUSES = (400, 422)


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the ApiError body; `descriptions` overrides by `_<code>` key,
    e.g. `error_responses(404, _404="no such job")`."""
    unknown = sorted(set(statuses) - set(_DESCRIPTIONS) - {404})
    if unknown:
        raise ValueError(f"no declared meaning for status {unknown}; known: {sorted(_DESCRIPTIONS)} and 404")
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {
            "model": ApiError,
            "description": descriptions.get(f"_{status}", _DESCRIPTIONS.get(status, "not found")),
        }
        if status in (429,):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def protected(*extra: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The statuses of a route behind authentication, plus `extra`."""
    return error_responses(*PROTECTED_STATUSES, *extra, **descriptions)


def admin(*extra: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The statuses of an admin-only route, plus `extra`."""
    return error_responses(*ADMIN_STATUSES, *extra, **descriptions)
