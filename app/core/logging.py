"""Structured JSON logs (structlog) with a request id on every line and sensitive values redacted.

The request id lives in a contextvar bound by the request-id middleware, so every log line of a request (and
every outgoing HTTP call, see `resilience.make_async_client`) carries it. Library logs (uvicorn, gunicorn,
httpx ...) go through the same processors via `structlog.stdlib.ProcessorFormatter`, so they are JSON and
redacted too. Prompts and answers are never logged: callers log `fingerprint(text)` instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REDACTED = "[redacted]"
# Keys whose values are credentials or user content. Matched case-insensitively anywhere in the key name.
_SENSITIVE_KEY = re.compile(
    r"(authorization|cookie|token|secret|passw|api[-_]?key|apikey|credential|private|dsn|"
    r"prompt|question|answer|messages|^content$|query_text|^q$)",
    re.IGNORECASE,
)
# Values that look like credentials even under an innocent key (a header dump, an exception message).
_SENSITIVE_VALUE = re.compile(
    r"(bearer\s+[a-z0-9._~+/=-]+|eyJ[a-zA-Z0-9_-]{8,}\.[a-zA-Z0-9_-]{8,}\.[a-zA-Z0-9_-]*|sk-[a-zA-Z0-9_-]{8,})",
    re.IGNORECASE,
)
_KEEP_KEYS = frozenset({"event", "level", "timestamp", "logger", "request_id", "prompt_sha256", "answer_sha256"})


def fingerprint(text: str) -> str:
    """A stable, non-reversible handle for user content in logs and metrics (sha256, 16 hex chars)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _redact_value(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        return _SENSITIVE_VALUE.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else _redact_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v, depth + 1) for v in value)
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank sensitive keys, scrub token-shaped strings everywhere else."""
    for key in list(event_dict):
        if key in _KEEP_KEYS:
            if key == "event" and isinstance(event_dict[key], str):
                event_dict[key] = _SENSITIVE_VALUE.sub(REDACTED, event_dict[key])
            continue
        if _SENSITIVE_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def _redact_exception(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc = event_dict.get("exception")
    if isinstance(exc, str):
        event_dict["exception"] = _SENSITIVE_VALUE.sub(REDACTED, exc)
    return event_dict


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one JSON renderer. Safe to call more than once.

    Logs go to stdout (`stream`: the CLIs that print their result on stdout log to stderr instead).
    """
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        # Both chains above already ran `redact`; the traceback text is scrubbed of tokens here.
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_exception,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    handler.set_name("visionrag-json")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "visionrag-json"]
    root.addHandler(handler)
    root.setLevel(level)
    # One access line per request comes from our middleware (with the request id); uvicorn's would duplicate it.
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error", "gunicorn.access"):
        lib = logging.getLogger(name)
        lib.handlers = []
        lib.propagate = True
    for noisy in ("httpx", "httpcore", "urllib3", "minio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
