"""The worker's audit events: one per job outcome, in the Object Lock audit bucket, via app/core/audit.py.

The api audits an upload (`document.upload`) before its job is queued: that is the intent. The job writes what
became of it, once, when it ends: `document.index` `succeeded` (pages, indexed, skipped, attempts, owner),
`failed` (the reason, attempts, `dead_letter: true`, `cause` permanent or retries_exhausted) or `cancelled`; an
admin reindex job writes `collection.reindex`. A retried attempt writes nothing (not an outcome). The event
carries the upload's request id (index_document binds it), so the two events join.

Unlike an api route or an ops command, the action has already happened when this event is written: the pages
are in Qdrant and S3. It is written just before the job record turns terminal, so a `succeeded`/`failed` record
means the audit is done too (a worker killed in between re-runs the job: at least once). A failed write never
undoes or fails the job. A transient error (S3 unreachable, 5xx, throttling: app/worker/errors.py) is retried with the
backoff of the job's must-land Redis writes (bookkeeping.until_answered) for up to WORKER_AUDIT_OUTAGE_S; after
that, or at once for a permanent error (access denied, no such bucket), `visionrag_audit_write_failures_total`
counts it and an ERROR log line carries the whole event, so the outcome still reaches the log pipeline.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from app.core.audit import AuditLog, process_actor
from app.core.metrics import AUDIT_WRITE_FAILURES
from app.services.factory import page_storage
from app.worker.bookkeeping import until_answered
from app.worker.errors import is_transient
from app.worker.settings import WorkerSettings

log = logging.getLogger(__name__)
INDEX_ACTION = "document.index"
REINDEX_ACTION = "collection.reindex"


class JobAudit:
    def __init__(self, audit_log: AuditLog, *, actor: str, outage_s: float) -> None:
        self.log = audit_log
        self.actor = actor
        self.outage_s = outage_s

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> JobAudit:
        """The audit bucket with the worker's S3 access; the actor is the pod's ServiceAccount (AUDIT_ACTOR)."""
        return cls(
            AuditLog(page_storage(settings, bucket=settings.s3_bucket_audit)),
            actor=process_actor(settings.audit_actor),
            outage_s=settings.worker_audit_outage_s,
        )

    async def record(self, *, action: str, target: str, outcome: str, **details: Any) -> bool:
        """Write one event; False (counted and logged with the event) when it could not be written."""
        try:
            await until_answered(
                f"audit {action} {target}",
                lambda: self.log.record(actor=self.actor, action=action, target=target, outcome=outcome, **details),
                transient=is_transient,
                dependency="audit bucket",
                outage_s=self.outage_s,
            )
        except Exception as exc:
            AUDIT_WRITE_FAILURES.labels(action=action).inc()
            event = {"actor": self.actor, "action": action, "target": target, "outcome": outcome, "details": details}
            log.error("audit event not written (%s: %s): %s", type(exc).__name__, exc, json.dumps(event, default=str))
            return False
        return True


def job_audit(ctx: dict[str, Any]) -> JobAudit:
    """The worker's JobAudit (made by `startup`; made here for callers that skip it, such as tests)."""
    if "audit" not in ctx:
        ctx["audit"] = JobAudit.from_settings(ctx["settings"])
    audit: JobAudit = ctx["audit"]
    return audit
