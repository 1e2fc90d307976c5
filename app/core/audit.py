"""Audit events (who, what, when, request id) for indexing, deletes, exports and admin actions.

Each event is one new JSON object in the audit bucket under `audit/YYYY/MM/DD/<time>-<uuid>.json`: keys are
never reused, so the log is append-only from the application's side; in staging/prod the bucket adds Object
Lock so not even an operator can rewrite it. Writing an audit event is part of the action: if it cannot be
written the caller fails (503) instead of acting unrecorded.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from app.core.logging import get_logger, request_id_var
from app.core.metrics import AUDIT_EVENTS

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
