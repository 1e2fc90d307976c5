"""Alarms: the CloudWatch alarms that page the alerts topic.

ALB 5xx and 4xx rates (metric math over the ALB's and the targets' 5xx / 4xx against all requests), unhealthy
targets per target group, ElastiCache memory per node. Each alarm notifies on ALARM and on OK, so a page is always
followed by its all-clear. (Bucket size and object count alarms are infra/bucket_alarms.py's: daily metrics, one
pair per bucket, in each bucket's region.)

ALB metrics (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html)
are published per minute, only while there is traffic, under the `LoadBalancer` dimension whose value is the
load balancer's ARN suffix (`app/<name>/<id>`, the `arn_suffix` output of infra/edge.py's aws.lb.LoadBalancer),
never its full ARN or name. HTTPCode_ELB_5XX_Count / HTTPCode_ELB_4XX_Count are answers the ALB itself made;
HTTPCode_Target_5XX_Count / HTTPCode_Target_4XX_Count are the targets' (the api, the frontend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

_ALB_NS = "AWS/ApplicationELB"
# The 4xx rate is judged only over 5-minute windows with at least this many requests: at a trickle, a few 401s
# from one expired session are a 100% "rate" and would page for nothing.
MIN_REQUESTS_FOR_4XX_RATE = 100


@dataclass(frozen=True, kw_only=True)
class AlarmsArgs:
    name_prefix: str
    topic_arn: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    alb_5xx_rate_percent: float
    alb_4xx_rate_percent: float
    cache_member_clusters: Sequence[str]
    cache_memory_percent: float
    tags: Mapping[str, str] = field(default_factory=dict)


class Alarms(pulumi.ComponentResource):
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not 0 < args.alb_5xx_rate_percent <= 100:
            raise ValueError(f"alb_5xx_rate_percent: {args.alb_5xx_rate_percent} must be in (0, 100]")
        if not 0 < args.alb_4xx_rate_percent <= 100:
            raise ValueError(f"alb_4xx_rate_percent: {args.alb_4xx_rate_percent} must be in (0, 100]")
        if not 0 < args.cache_memory_percent <= 100:
            raise ValueError(f"cache_memory_percent: {args.cache_memory_percent} must be in (0, 100]")
        if not args.target_group_arn_suffixes:
            raise ValueError("target_group_arn_suffixes: at least one target group is required")
        super().__init__("visionrag:infra:Alarms", name, None, opts)
        self._name = name
        self._args = args
        self.alarms = {}

        def metric(qid: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=qid,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=_ALB_NS,
                    metric_name=metric_name,
                    dimensions={"LoadBalancer": args.alb_arn_suffix},
                    period=300,
                    stat="Sum",
                ),
            )

        self._alarm(
            "alb-5xx-rate",
            description=f"More than {args.alb_5xx_rate_percent}% of ALB requests answered 5xx (ALB or targets)",
            comparison_operator="GreaterThanThreshold",
            threshold=args.alb_5xx_rate_percent,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            metric_queries=[
                metric("elb5xx", "HTTPCode_ELB_5XX_Count"),
                metric("target5xx", "HTTPCode_Target_5XX_Count"),
                metric("requests", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    label="5xx rate (%)",
                    # No requests is no error rate (0), not missing data.
                    expression="IF(requests > 0, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)",
                    return_data=True,
                ),
            ],
        )

        # A spike of refusals (401/403/404/413/429...) is an attack, a broken client release or a quota wall.
        self._alarm(
            "alb-4xx-rate",
            description=(
                f"More than {args.alb_4xx_rate_percent}% of ALB requests answered 4xx (ALB or targets), "
                f"in 5-minute windows of at least {MIN_REQUESTS_FOR_4XX_RATE} requests"
            ),
            comparison_operator="GreaterThanThreshold",
            threshold=args.alb_4xx_rate_percent,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            metric_queries=[
                metric("elb4xx", "HTTPCode_ELB_4XX_Count"),
                metric("target4xx", "HTTPCode_Target_4XX_Count"),
                metric("requests", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    label="4xx rate (%)",
                    expression=(
                        f"IF(FILL(requests, 0) >= {MIN_REQUESTS_FOR_4XX_RATE}, "
                        "100 * (FILL(elb4xx, 0) + FILL(target4xx, 0)) / requests, 0)"
                    ),
                    return_data=True,
                ),
            ],
        )

        for key, suffix in sorted(args.target_group_arn_suffixes.items()):
            self._alarm(
                f"unhealthy-{key}",
                description=f"Target group {key} has unhealthy targets",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                namespace=_ALB_NS,
                metric_name="UnHealthyHostCount",
                dimensions={"TargetGroup": suffix, "LoadBalancer": args.alb_arn_suffix},
                statistic="Maximum",
                period=60,
            )

        for node in args.cache_member_clusters:
            self._alarm(
                f"cache-memory-{node}",
                description=f"ElastiCache node {node} uses more than {args.cache_memory_percent}% of its memory",
                comparison_operator="GreaterThanThreshold",
                threshold=args.cache_memory_percent,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                namespace="AWS/ElastiCache",
                metric_name="DatabaseMemoryUsagePercentage",
                dimensions={"CacheClusterId": node},
                statistic="Maximum",
                period=300,
            )

        self.register_outputs({"alarm_arns": {k: a.arn for k, a in self.alarms.items()}})

    def _alarm(self, key: str, *, description: str, **kwargs: Any) -> None:
        args = self._args
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}",
            name=f"{args.name_prefix}-{key}",
            alarm_description=description,
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            # Silence is not health for these metrics (no traffic, no datapoints): never page on missing data.
            treat_missing_data="notBreaching",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
            **kwargs,
        )
