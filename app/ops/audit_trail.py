"""The ops commands' audit trail: the api's Object Lock audit bucket and the same `audited` (app/core/audit.py).

Every command is one audited action: `started` before it touches anything, `succeeded`/`failed` after. If the
audit bucket cannot be written the command fails (exit code 3, AUDIT_EXIT) before acting. The actor is the
process's identity (`process_actor`: the pod's ServiceAccount, CI's run, or the operator's login).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from app.core.audit import AuditLog, audited, process_actor
from app.core.resilience import DependencyUnavailable
from app.core.settings import ConnectionSettings
from app.services.factory import page_storage

# Exit code of a command whose audit event could not be written (0 ok, 1 negative result, 2 bad input).
AUDIT_EXIT = 3


class Boto3Writer:
    """`ObjectWriter` over a boto3 S3 client, for commands configured by flags rather than settings (models)."""

    def __init__(self, s3: Any, bucket: str, *, kms_key_id: str | None = None) -> None:
        self._s3 = s3
        self._bucket = bucket
        # No header: the bucket's default encryption (its KMS key); with a key: ask for exactly that key.
        self._sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        def _put() -> str:
            response = self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, **self._sse
            )
            return str(response.get("ETag", ""))

        return await asyncio.to_thread(_put)


def ops_audit_log(settings: ConnectionSettings) -> AuditLog:
    return AuditLog(page_storage(settings, bucket=settings.s3_bucket_audit))


def command_audit(settings: ConnectionSettings, *, action: str, target: str, **details: Any) -> audited:
    """`with command_audit(settings, action="ops.x", target=...) as outcome:` around one command's work."""
    return audited(
        ops_audit_log(settings),
        actor=process_actor(settings.audit_actor),
        action=action,
        target=target,
        **details,
    )


class _CommandFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exit code {code}")
        self.code = code


def run_audited(audit: audited, work: Callable[[dict[str, Any]], int]) -> int:
    """Run `work(outcome)` inside `audit` and return its exit code.

    `work` adds its result details to `outcome`; a non-zero exit code is recorded as `failed` (with the code), an
    exception as `failed` and re-raised. An audit write that fails prints the reason and returns AUDIT_EXIT; when
    it is the `started` event, `work` never ran.
    """
    try:
        with audit as outcome:
            code = work(outcome)
            outcome["exit_code"] = code
            if code != 0:
                raise _CommandFailed(code)
            return 0
    except _CommandFailed as failed:
        return failed.code
    except DependencyUnavailable as exc:
        if exc.dependency != "audit":
            raise
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return AUDIT_EXIT
