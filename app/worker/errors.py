"""Which failures are worth retrying. Transient: the dependency may answer next time. Everything the input
itself causes (bad PDF, image refused, missing upload) is permanent and goes straight to the dead letters."""

from __future__ import annotations

import asyncio

import httpx
import urllib3.exceptions
from minio.error import S3Error, ServerError

from app.core.resilience import DependencyUnavailable
from app.services.embedder_client import EmbedderRejected, EmbedderUnavailable


class JobCancelled(Exception):
    """The user asked to stop; partial pages are removed."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, EmbedderRejected):
        return False
    if isinstance(exc, DependencyUnavailable):  # a breaker that is open, or retries spent on a dependency
        return True
    if isinstance(exc, EmbedderUnavailable | httpx.TransportError | urllib3.exceptions.HTTPError | ServerError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | asyncio.TimeoutError):
        return True
    if isinstance(exc, S3Error):
        return exc.code in {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}
    # qdrant-client wraps connection failures in ResponseHandlingException and HTTP errors in UnexpectedResponse.
    name = type(exc).__name__
    if name == "ResponseHandlingException":
        return True
    if name == "UnexpectedResponse":
        status = getattr(exc, "status_code", 0) or 0
        return status >= 500 or status == 429
    if name in {"AioRpcError", "_InactiveRpcError"}:
        return True
    return isinstance(exc, OSError)
