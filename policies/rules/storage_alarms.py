"""Every S3 bucket has a size alarm and an object-count alarm on S3's daily storage metrics.

S3 has no hard quota, so these alarms are what notices a bucket growing past what it should hold (a runaway job,
an abuse of uploads, a lifecycle rule that stopped working). A bucket added to the stack without them fails the
preview here. What counts (https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html):
- namespace AWS/S3, metric BucketSizeBytes with StorageType StandardStorage, and NumberOfObjects with StorageType
  AllStorageTypes, dimension BucketName = the bucket's name: the only pairs S3 publishes for these metrics;
- period 86400: S3 publishes them once a day, so any shorter period only ever sees missing data;
- at least one alarm action, and the alarm in the bucket's region (storage metrics are regional) paging a topic in
  that same region (an alarm's SNS actions are topics of its own region).
Alarms are matched to buckets by the BucketName dimension against the bucket's `bucket` input: both are plain
names in this program (infra/bucket_names.py), known in a real preview too.
"""

from __future__ import annotations

from pulumi_policy import Policy, PolicyResource, Severity, StackValidationArgs

from policies.rules._base import as_list, get, is_unknown, number, of_type, peek, raw, stack_policy
from policies.rules.storage import BucketGroup, _bucket_check

ALARM_TYPES = ("aws:cloudwatch/metricAlarm:MetricAlarm",)
# metric -> the StorageType S3 publishes it under for a STANDARD-only bucket.
STORAGE_METRICS = {"BucketSizeBytes": "StandardStorage", "NumberOfObjects": "AllStorageTypes"}
DAILY = 86400


def region_of(resource: PolicyResource) -> str | None:
    """The resource's region: its pulumi-aws v7 `region` input, else its provider's; None: the stack default."""
    for value in (
        peek(resource.props, "region"),
        peek(resource.provider.props, "region") if resource.provider else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _arn_region(arn: object) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) > 3 and parts[3] else None


def _problem(alarm: PolicyResource, bucket_region: str | None, other_regions: set[str]) -> str | None:
    period = number(get(alarm.props, "period"))
    if period != DAILY:
        return f"period {period} (S3 storage metrics are daily: need {DAILY})"
    alarm_region = region_of(alarm)
    if alarm_region != bucket_region:
        return f"alarm in {alarm_region or 'the stack region'}, bucket in {bucket_region or 'the stack region'}"
    # The topic ARN is an output of a topic being created: unknown in a real preview of a new stack. Unknown is
    # "set, value to come" (judged on the offline plan and on every later preview), never "missing".
    actions = raw(alarm.props).get("alarmActions")
    if is_unknown(actions):
        return None
    if not [a for a in as_list(actions) if a]:
        return "no alarm action (nobody is told)"
    for action in as_list(actions):
        topic_region = None if is_unknown(action) else _arn_region(action)
        if topic_region is None:
            continue
        if alarm_region is not None and topic_region != alarm_region:
            return f"alarm in {alarm_region} pages a topic in {topic_region} (alarms page topics of their region)"
        if alarm_region is None and topic_region in other_regions:
            return f"alarm in the stack region pages a topic in {topic_region}"
    return None


def _alarms_for(group: BucketGroup, args: StackValidationArgs) -> list[str]:
    alarms = [
        a
        for a in of_type(list(args.resources), *ALARM_TYPES)
        if peek(a.props, "namespace") == "AWS/S3" and peek(a.props, "dimensions", "BucketName") == group.name
    ]
    bucket_region = region_of(group.bucket)
    other_regions = {r for a in alarms if (r := region_of(a)) is not None}
    other_regions |= {
        r for b in of_type(list(args.resources), "aws:s3/bucket:Bucket") if (r := region_of(b)) is not None
    }
    out = []
    for metric, storage_type in STORAGE_METRICS.items():
        candidates = [
            a
            for a in alarms
            if peek(a.props, "metricName") == metric and peek(a.props, "dimensions", "StorageType") == storage_type
        ]
        if not candidates:
            out.append(f"no {metric} alarm (AWS/S3, StorageType {storage_type}, BucketName {group.name})")
            continue
        problems = [p for a in candidates if (p := _problem(a, bucket_region, _others(bucket_region, other_regions)))]
        if len(problems) == len(candidates):
            out.append(f"{metric} alarm: {problems[0]}")
    return out


def _others(bucket_region: str | None, regions: set[str]) -> set[str]:
    return regions - {bucket_region} if bucket_region else regions


POLICIES: list[Policy] = [
    stack_policy(
        name="s3-storage-alarms",
        description="Every S3 bucket has a daily BucketSizeBytes (StandardStorage) and NumberOfObjects "
        "(AllStorageTypes) alarm in its own region, paging a topic in that region.",
        severity=Severity.MEDIUM,
        remediation="Add the bucket to infra/bucket_alarms.py's BucketAlarms (program: Observability's buckets / "
        "replica_buckets) with thresholds in storage.bucketLimits.",
        validate=_bucket_check(_alarms_for),
        tags=["s3", "cost", "monitoring"],
    ),
]
