"""`audited` against the real SeaweedFS audit bucket: a closing `failed` event that cannot be written is counted."""

from __future__ import annotations

import json

import pytest

from app.core.audit import AuditLog, audited
from app.core.metrics import AUDIT_WRITE_FAILURES
from app.services.storage import PageStorage


class _Boom(Exception):
    pass


def _storage(endpoint: str, seaweed_s3, bucket: str) -> PageStorage:
    return PageStorage(
        endpoint=endpoint,
        bucket=bucket,
        access_key=seaweed_s3.access_key,
        secret_key=seaweed_s3.secret_key,
        secure=False,
        timeout_s=2,
    )


async def test_a_lost_failed_event_is_counted_and_the_actions_error_is_raised(
    seaweed_s3, s3_buckets, closed_port
) -> None:
    audit_log = AuditLog(_storage(seaweed_s3.endpoint, seaweed_s3, s3_buckets.audit))
    action = "test.lost_failed_event"
    lost = AUDIT_WRITE_FAILURES.labels(action=action)._value.get()
    with pytest.raises(_Boom):
        async with audited(audit_log, actor="tester", action=action, target="t"):
            # The audit endpoint stops answering after `started` was written.
            audit_log._writer = _storage(f"127.0.0.1:{closed_port}", seaweed_s3, s3_buckets.audit)
            raise _Boom("the action failed")
    [key] = seaweed_s3.object_names(s3_buckets.audit, "audit/")
    assert json.loads(seaweed_s3.read(s3_buckets.audit, key))["outcome"] == "started"
    assert AUDIT_WRITE_FAILURES.labels(action=action)._value.get() == lost + 1
