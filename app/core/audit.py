"""Audit events (who, what, when, request id) for indexing, deletes, exports and admin actions.

Each event is one new JSON object in the audit bucket under `audit/YYYY/MM/DD/<time>-<uuid>.json`: keys are
never reused, so the log is append-only from the application's side; in staging/prod the bucket adds Object
Lock so not even an operator can rewrite it. Writing an audit event is part of the action: if it cannot be
written the caller fails (503) instead of acting unrecorded.

`audited(...)` is the one way an admin, indexing or maintenance action is recorded (API routes with `async with`,
the ops CLIs with `with`): a `started` event BEFORE the action, so nothing happens that the log does not show
(if that write fails the action never runs), then `succeeded` or `failed` AFTER it with the outcome, so the log
also says what happened. Both carry the same `action_id`. A failure to write the closing event fails the command
too: the trail then shows a `started` with no end, which is exactly what an operator must look into.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from app.core.logging import get_logger, request_id_var
from app.core.metrics import AUDIT_EVENTS, AUDIT_WRITE_FAILURES
from app.core.resilience import DependencyUnavailable

log = get_logger(__name__)


class ObjectWriter(Protocol):
    async def put_bytes(self, key: str, data: bytes, content_type: str = ...) -> str: ...


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    actor: str
    action: str
    target: str
    outcome: str = "succeeded"
    details: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    at: str = ""
    event_id: str = ""


class AuditLog:
    def __init__(self, writer: ObjectWriter, *, prefix: str = "audit") -> None:
        self._writer = writer
        self._prefix = prefix.strip("/")

    async def record(
        self, *, actor: str, action: str, target: str, outcome: str = "succeeded", **details: Any
    ) -> AuditEvent:
        now = datetime.now(UTC)
        event = AuditEvent(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            details=details,
            request_id=request_id_var.get(),
            at=now.isoformat(),
            event_id=uuid.uuid4().hex,
        )
        key = f"{self._prefix}/{now:%Y/%m/%d}/{now:%H%M%S%f}-{event.event_id}.json"
        body = json.dumps(asdict(event), sort_keys=True, default=str).encode()
        await self._writer.put_bytes(key, body, "application/json")
        AUDIT_EVENTS.labels(action=action).inc()
        log.info("audit", action=action, target=target, outcome=outcome, actor=actor)
        return event


_EVENT_FIELDS = frozenset({"actor", "action", "target", "outcome"})
# Set in the pods (infra/workloads/pod_env.py) to `system:serviceaccount:<namespace>:<name>`; CI may set it too.
AUDIT_ACTOR_ENV = "AUDIT_ACTOR"


def process_actor(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Who runs a command outside an API request: explicit/AUDIT_ACTOR, CI's identity, the IRSA role, the user.

    A pod names its ServiceAccount through AUDIT_ACTOR (plus its pod name); GitHub Actions is recognised by its
    own variables (repository, actor, run id: enough to find the run); a laptop records `local:<user>@<host>`.
    """
    env = os.environ if environ is None else environ
    pod = env.get("HOSTNAME", "")
    named = explicit or env.get(AUDIT_ACTOR_ENV)
    if named:
        return f"{named} pod/{pod}" if named.startswith("system:serviceaccount:") and pod else named
    if env.get("GITHUB_ACTIONS") == "true":
        return (
            f"ci:github:{env.get('GITHUB_REPOSITORY', '?')}:{env.get('GITHUB_ACTOR', '?')}"
            f":run/{env.get('GITHUB_RUN_ID', '?')}"
        )
    if env.get("AWS_ROLE_ARN"):
        return f"aws-role:{env['AWS_ROLE_ARN']}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"local:{user}@{socket.gethostname()}"


class audited:  # lower case: used like a function, `async with audited(...)` / `with audited(...)`
    """Record one action: `started` first (the action never runs unrecorded), `succeeded`/`failed` last.

    The block may add result details to the mapping it receives (`as outcome`); they go into the closing event.
    Exceptions raised by the block are recorded as `failed` and re-raised unchanged. Synchronous callers (the ops
    CLIs, outside any event loop) use `with`; each write then runs in its own short event loop.
    """

    def __init__(self, log: AuditLog, *, actor: str, action: str, target: str, **details: Any) -> None:
        self._log = log
        self._base: dict[str, Any] = {"actor": actor, "action": action, "target": target}
        self._details = {**details, "action_id": uuid.uuid4().hex}
        self.outcome: dict[str, Any] = {}

    async def _write(self, outcome: str, details: dict[str, Any]) -> None:
        # A result detail named like an event field (a reindex's `target`) must not replace or collide with it.
        details = {(f"result_{k}" if k in _EVENT_FIELDS else k): v for k, v in details.items()}
        try:
            await self._log.record(**self._base, outcome=outcome, **details)
        except Exception as exc:
            # The api maps this to 503 naming "audit"; the ops CLIs to exit code 3.
            raise DependencyUnavailable("audit", f"{type(exc).__name__} writing the {outcome} event") from exc

    async def _start(self) -> dict[str, Any]:
        await self._write("started", self._details)
        return self.outcome

    async def _finish(self, error: BaseException | None) -> None:
        details = {**self._details, **self.outcome}
        if error is None:
            await self._write("succeeded", details)
            return
        details.setdefault("error", f"{type(error).__name__}: {error}"[:1000])  # the block's own words first
        try:
            await self._write("failed", details)
        except DependencyUnavailable as exc:  # the action's own error is the one to raise; this one is logged
            AUDIT_WRITE_FAILURES.labels(action=self._base["action"]).inc()
            log.error("audit_failed_event_lost", action=self._base["action"], error=type(exc).__name__)

    async def __aenter__(self) -> dict[str, Any]:
        return await self._start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._finish(error)

    def __enter__(self) -> dict[str, Any]:
        return asyncio.run(self._start())

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run(self._finish(error))
