"""Pure-ASGI middleware (no BaseHTTPMiddleware: it buffers and costs a task per request).

- `RequestContextMiddleware`: accepts a well-formed `X-Request-ID` or generates one, binds it to every log line
  of the request (contextvar), echoes it on the response, writes one access-log line (never the query string:
  it carries user queries) and caps the body size of non-upload requests.
- `SecurityHeadersMiddleware`: HSTS, nosniff, frame deny, a deny-all CSP for a JSON API, referrer policy,
  no-store caching, on every response including errors.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable

import structlog
from fastapi import HTTPException
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import get_logger, request_id_var

log = get_logger("visionrag.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int = 1 << 20, unbounded_paths: Iterable[str] = ("/index",)
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.unbounded_paths = frozenset(unbounded_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = [500]
        response_started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
            await send(message)

        bounded_receive = receive
        if scope["path"] not in self.unbounded_paths:
            bounded_receive = self._bounded(scope, receive)
        try:
            await self.app(scope, bounded_receive, send_with_id)
        except Exception as exc:
            # The last line of defence: log with the request id, answer JSON, never a traceback.
            log.exception("unhandled_error", error=type(exc).__name__)
            if response_started[0]:
                raise
            body = json.dumps({"detail": "internal server error", "request_id": request_id}).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status_holder[0],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            request_id_var.reset(token)
            structlog.contextvars.clear_contextvars()

    def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:

                async def refuse() -> Message:
                    raise HTTPException(413, f"request body larger than {limit} bytes")

                return refuse
        seen = [0]

        async def counting() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        return counting


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int = 31_536_000, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_paths = tuple(docs_paths)
        self.headers = [
            (b"strict-transport-security", f"max-age={hsts_max_age_s}; includeSubDomains".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-site"),
        ]
        self.csp = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = bool(self.docs_paths) and scope["path"].startswith(self.docs_paths)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw.extend(h for h in self.headers if h[0] not in present)
                if not is_docs and self.csp[0] not in present:
                    raw.append(self.csp)
                if b"cache-control" not in present:
                    raw.append((b"cache-control", b"no-store"))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)
