"""s3-storage-alarms on the real program's plans: every committed stack passes, and a bucket added to prod without
its alarms (or a replica alarm moved to the stack region) fails the preview, mandatory."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies.evaluator import evaluate, stack_pack_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUCKET = "aws:s3/bucket:Bucket"
STACKS = ("dev", "staging", "prod")


def _mine(plan: dict[str, Any], stack: str) -> list[str]:
    result = evaluate(plan, stack_pack_config(stack))
    return [v.message for v in result.violations if v.policy == "s3-storage-alarms" and v.level == "mandatory"]


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_pass(records, stack: str) -> None:
    assert _mine(records[stack].to_plan(), stack) == []


def test_a_new_bucket_without_alarms_fails(records) -> None:
    plan = copy.deepcopy(records["prod"].to_plan())
    pages = next(r for r in plan["resources"] if r["type"] == BUCKET and r["name"] == "storage-pages-bucket")
    extra = copy.deepcopy(pages)
    extra["name"] = extra["urn"].rsplit("::", 1)[1] + "-exports"
    extra["urn"] = extra["urn"] + "-exports"
    extra["inputs"]["bucket"] = pages["inputs"]["bucket"] + "-exports"
    plan["resources"].append(extra)
    messages = _mine(plan, "prod")
    assert len(messages) == 2 and all("-exports" in m for m in messages)
    assert any("no BucketSizeBytes alarm" in m for m in messages)
    assert any("no NumberOfObjects alarm" in m for m in messages)


def test_a_replica_alarm_in_the_stack_region_fails(records) -> None:
    plan = copy.deepcopy(records["prod"].to_plan())
    alarm = next(r for r in plan["resources"] if r["type"] == ALARM and r["name"].endswith("pages-replica-size"))
    del alarm["inputs"]["region"]
    (message,) = _mine(plan, "prod")
    assert "pages-replica" in message and "bucket in us-west-2" in message


def test_a_topic_arn_unknown_in_a_real_preview_is_not_a_missing_action(records) -> None:
    # A new stack's topic does not exist yet: its ARN (and so the whole action list) is unknown in `pulumi preview`.
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    plan = copy.deepcopy(records["prod"].to_plan())
    for r in plan["resources"]:
        if r["type"] == ALARM and r["inputs"].get("namespace") == "AWS/S3":
            r["inputs"]["alarmActions"] = (
                UNKNOWN_STRING_VALUE if r["name"].endswith("-size") else [UNKNOWN_STRING_VALUE]
            )
    assert _mine(plan, "prod") == []
