"""Bucket alarms: every bucket's size and object count against per-purpose thresholds, paging the alerts topic.

S3 has no hard quota; these are the guard rails (the hard per-identity upload quota is the api's, app/api/quotas.py).
Amazon S3 publishes its storage metrics to CloudWatch once a day, per bucket and storage type, at no charge
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html, "Amazon S3 daily storage metrics
for buckets in CloudWatch"):
- `BucketSizeBytes`, StorageType `StandardStorage`: bytes in STANDARD, every version and incomplete multipart part
  included (every bucket here is STANDARD only: no lifecycle transitions);
- `NumberOfObjects`, StorageType `AllStorageTypes`: objects of every class, versions included.
So the period is 86400 s (a shorter one only ever sees gaps), and an alarm looks back two days and fires on one
datapoint over the line: the day's datapoint is stamped 00:00 UTC but arrives hours later, so a one-day window
could be evaluated before its only datapoint exists. Missing data is `notBreaching`: a new or empty bucket has no
datapoints yet, which is not a breach; growth past a threshold always brings a datapoint.
An alarm lives in its bucket's region (the metrics are regional) and pages a topic in that region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

GIB = 1024**3
STORAGE_METRICS_PERIOD_S = 86400
# Bounds a stack may choose (stacks/config/storage.py imports them): above them an alarm guards nothing.
MAX_SIZE_GIB = 1_048_576  # 1 PiB
MAX_OBJECTS = 10**12
# (metric, StorageType) per alarm kind: the pairs S3 documents for these metrics.
SIZE_METRIC = ("BucketSizeBytes", "StandardStorage")
COUNT_METRIC = ("NumberOfObjects", "AllStorageTypes")


@dataclass(frozen=True, kw_only=True)
class BucketLimits:
    size_gib: int
    objects: int

    def __post_init__(self) -> None:
        if not 1 <= self.size_gib <= MAX_SIZE_GIB:
            raise ValueError(f"size_gib: {self.size_gib} must be between 1 and {MAX_SIZE_GIB}")
        if not 1 <= self.objects <= MAX_OBJECTS:
            raise ValueError(f"objects: {self.objects} must be between 1 and {MAX_OBJECTS}")


@dataclass(frozen=True, kw_only=True)
class BucketAlarmsArgs:
    name_prefix: str
    topic_arn: pulumi.Input[str]
    # key (e.g. "pages", "pages-replica") -> the bucket's physical name. Plain strings: the names are known before
    # any bucket exists (infra/bucket_names.py), and the storage-alarms policy matches alarms to buckets by them.
    buckets: Mapping[str, str]
    limits: Mapping[str, BucketLimits]  # same keys as `buckets`
    region: str | None = None  # None: the stack's region
    tags: Mapping[str, str] = field(default_factory=dict)


class BucketAlarms(pulumi.ComponentResource):
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: BucketAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        missing = sorted(set(args.buckets) - set(args.limits))
        if missing:
            raise ValueError(f"limits: no thresholds for buckets {missing}")
        if not args.buckets:
            raise ValueError("buckets: at least one bucket is required")
        super().__init__("visionrag:infra:BucketAlarms", name, None, opts)
        self.alarms = {}
        for key, bucket in sorted(args.buckets.items()):
            limits = args.limits[key]
            for kind, (metric, storage_type), threshold, what in (
                ("size", SIZE_METRIC, limits.size_gib * GIB, f"{limits.size_gib} GiB"),
                ("objects", COUNT_METRIC, limits.objects, f"{limits.objects} objects"),
            ):
                self.alarms[f"{key}-{kind}"] = aws.cloudwatch.MetricAlarm(
                    f"{name}-{key}-{kind}",
                    name=f"{args.name_prefix}-bucket-{key}-{kind}",
                    alarm_description=f"Bucket {bucket} holds more than {what} ({metric}, daily)",
                    namespace="AWS/S3",
                    metric_name=metric,
                    dimensions={"BucketName": bucket, "StorageType": storage_type},
                    statistic="Maximum",
                    period=STORAGE_METRICS_PERIOD_S,
                    evaluation_periods=2,
                    datapoints_to_alarm=1,
                    comparison_operator="GreaterThanThreshold",
                    threshold=threshold,
                    treat_missing_data="notBreaching",
                    alarm_actions=[args.topic_arn],
                    ok_actions=[args.topic_arn],
                    region=args.region,
                    tags=dict(args.tags),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"alarm_arns": {k: a.arn for k, a in self.alarms.items()}})
