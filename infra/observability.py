"""Observability: metrics (Amazon Managed Prometheus + an agentless managed scraper) and alerts (SNS, alarms, budget).

The scraper runs in the `control` subnets (apart from the pods') with its own security group, allowed to reach the
nodes on the metrics ports only (api 9090, worker 9091, Qdrant 6333, DCGM exporter 9400) and the API server for
discovery.
It authenticates to Kubernetes through the EKS access entry AMP creates for it (`aps-collector-user`), bound here to
a read-only ClusterRole.
Alerts go to an SNS topic encrypted with its own key (infra/alert_topic.py); a stack with replica buckets in a
second region gets a second topic there, because an alarm pages a topic in its own region only. Every bucket, the
replicas included, has a size and an object-count alarm (infra/bucket_alarms.py).
Grafana dashboards for these metrics live in infra/dashboards/ (import them into the AMP-backed Grafana).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.alarms import Alarms, AlarmsArgs
from infra.alert_topic import alert_topic
from infra.bucket_alarms import BucketAlarms, BucketAlarmsArgs, BucketLimits
from infra.bucket_names import REPLICA_SUFFIX
from infra.budget import CostBudget, CostBudgetArgs
from infra.scrape_config import (
    MAX_SCRAPE_INTERVAL_SECONDS,
    MIN_SCRAPE_INTERVAL_SECONDS,
    SCRAPE_PORTS,
    scrape_configuration,
)
from infra.sg_rules import allow_tcp_between

__all__ = ["SCRAPER_USER", "SCRAPE_PORTS", "Observability", "ObservabilityArgs", "scrape_configuration"]

SCRAPER_USER = "aps-collector-user"
# What an alarm / budget subscriber address must look like; stacks/config/observability.py validates with it.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")
_REPLICA = f"-{REPLICA_SUFFIX}"


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    name_prefix: str  # "<prefix>-<tier>"
    tier: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    scraper_subnet_ids: Sequence[pulumi.Input[str]]  # the `control` tier: NetworkPolicies admit scrapes from it
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    node_security_group_id: pulumi.Input[str]
    k8s_provider: k8s.Provider
    amp_key_arn: pulumi.Input[str]
    scrape_interval_seconds: int
    alarm_emails: Sequence[str]
    monthly_budget_usd: float
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    alb_5xx_rate_percent: float
    alb_4xx_rate_percent: float
    cache_member_clusters: Sequence[str]
    cache_memory_percent: float
    # Every bucket the stack creates, key -> physical name (Storage.bucket_names); replicas' keys end "-replica"
    # and they live in `replica_region`. Thresholds are per purpose (a replica uses its source's).
    buckets: Mapping[str, str]
    bucket_limits: Mapping[str, BucketLimits]
    replica_buckets: Mapping[str, str] = field(default_factory=dict)
    replica_region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: ObservabilityArgs) -> None:
    for e in args.alarm_emails:
        if not EMAIL.match(e):
            raise ValueError(f"alarm_emails: {e!r} is not an e-mail address")
    lo, hi = MIN_SCRAPE_INTERVAL_SECONDS, MAX_SCRAPE_INTERVAL_SECONDS
    if not lo <= args.scrape_interval_seconds <= hi:
        raise ValueError(
            f"scrape_interval_seconds: {args.scrape_interval_seconds} must be between {lo} and {hi} "
            "(the AMP managed scraper refuses shorter intervals)"
        )
    if len(args.scraper_subnet_ids) < 2:
        raise ValueError("scraper_subnet_ids: the managed scraper needs subnets in at least two AZs")
    purposes = {k.removesuffix(_REPLICA) for k in (*args.buckets, *args.replica_buckets)}
    missing = sorted(purposes - set(args.bucket_limits))
    if missing:
        raise ValueError(f"bucket_limits: no thresholds for {missing}; every bucket has size and object alarms")
    if bool(args.replica_buckets) != (args.replica_region is not None):
        raise ValueError("replica_buckets and replica_region: give both or neither")


class Observability(pulumi.ComponentResource):
    workspace: aws.amp.Workspace
    scraper: aws.amp.Scraper
    topic: aws.sns.Topic
    alerts_key: aws.kms.Key
    alarms: Alarms
    bucket_alarms: list[BucketAlarms]
    budget: CostBudget
    workspace_arn: pulumi.Output[str]
    prometheus_endpoint: pulumi.Output[str]
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account = pulumi.Output.from_input(args.account_id)

        # --- metrics --------------------------------------------------------------------------------------
        self.workspace = aws.amp.Workspace(
            f"{name}-amp", alias=args.name_prefix, kms_key_arn=args.amp_key_arn, tags=tags, opts=child
        )
        scraper_sg = aws.ec2.SecurityGroup(
            f"{name}-scraper-sg",
            name=f"{args.name_prefix}-scraper",
            description="AMP managed scraper: out to node metrics ports and the API server only",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        for port in sorted(SCRAPE_PORTS):
            allow_tcp_between(
                egress_name=f"{name}-scraper-out-{port}",
                ingress_name=f"{name}-nodes-in-scrape-{port}",
                source_sg_id=scraper_sg.id,
                target_sg_id=args.node_security_group_id,
                port=port,
                egress_description=f"scrape {SCRAPE_PORTS[port]} metrics",
                ingress_description=f"AMP scraper reads {SCRAPE_PORTS[port]} metrics",
                tags=tags,
                opts=child,
            )
        allow_tcp_between(
            egress_name=f"{name}-scraper-out-apiserver",
            ingress_name=f"{name}-apiserver-in-scraper",
            source_sg_id=scraper_sg.id,
            target_sg_id=args.cluster_security_group_id,
            port=443,
            egress_description="Kubernetes API for pod discovery",
            ingress_description="AMP scraper pod discovery",
            tags=tags,
            opts=child,
        )
        self.scraper = aws.amp.Scraper(
            f"{name}-scraper",
            alias=f"{args.name_prefix}-eks",
            source=aws.amp.ScraperSourceArgs(
                eks=aws.amp.ScraperSourceEksArgs(
                    cluster_arn=args.cluster_arn,
                    subnet_ids=list(args.scraper_subnet_ids),
                    security_group_ids=[scraper_sg.id],
                )
            ),
            destination=aws.amp.ScraperDestinationArgs(
                amp=aws.amp.ScraperDestinationAmpArgs(workspace_arn=self.workspace.arn)
            ),
            scrape_configuration=scrape_configuration(args.scrape_interval_seconds),
            tags=tags,
            opts=child,
        )
        # The scraper's identity in Kubernetes. With authenticationMode API the AMP service creates the scraper
        # role's EKS access entry itself (user name `aps-collector-user`, no access policy) when the scraper is
        # created; a second entry for the same principal is refused (ResourceInUseException), so the stack does
        # not declare one. What AMP leaves to us is RBAC for that user: a read-only ClusterRole for discovery of
        # pods/services/endpoints and GET /metrics, nothing else. (docs/platform.md, "What AWS requires".)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.k8s_provider)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-scraper-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="aps-collector-role"),
            rules=[
                # Pod discovery only. No nodes/proxy: GET on it reaches the kubelet API, far more than metrics.
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["pods", "services", "endpoints"], verbs=["get", "list", "watch"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["discovery.k8s.io"], resources=["endpointslices"], verbs=["get", "list", "watch"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(non_resource_urls=["/metrics"], verbs=["get"]),
            ],
            opts=k8s_opts,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-scraper-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="aps-collector-user-role-binding"),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="User", name=SCRAPER_USER, api_group="rbac.authorization.k8s.io")],
            role_ref=k8s.rbac.v1.RoleRefArgs(
                kind="ClusterRole",
                name=role.metadata.apply(lambda m: m.name or ""),
                api_group="rbac.authorization.k8s.io",
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider, depends_on=[self.scraper]),
        )

        # --- alerts ---------------------------------------------------------------------------------------
        alerts = alert_topic(
            name, name_prefix=args.name_prefix, account=account, emails=args.alarm_emails, tags=tags, parent=self
        )
        self.alerts_key, self.topic = alerts.key, alerts.topic

        self.alarms = Alarms(
            f"{name}-alarms",
            AlarmsArgs(
                name_prefix=args.name_prefix,
                topic_arn=self.topic.arn,
                alb_arn_suffix=args.alb_arn_suffix,
                target_group_arn_suffixes=args.target_group_arn_suffixes,
                alb_5xx_rate_percent=args.alb_5xx_rate_percent,
                alb_4xx_rate_percent=args.alb_4xx_rate_percent,
                cache_member_clusters=args.cache_member_clusters,
                cache_memory_percent=args.cache_memory_percent,
                tags=tags,
            ),
            opts=child,
        )

        def limits(buckets: Mapping[str, str]) -> dict[str, BucketLimits]:
            return {k: args.bucket_limits[k.removesuffix(_REPLICA)] for k in buckets}

        self.bucket_alarms = [
            BucketAlarms(
                f"{name}-bucket-alarms",
                BucketAlarmsArgs(
                    name_prefix=args.name_prefix,
                    topic_arn=self.topic.arn,
                    buckets=args.buckets,
                    limits=limits(args.buckets),
                    tags=tags,
                ),
                opts=child,
            )
        ]
        if args.replica_region is not None:
            # The replicas' metrics are in their region, and so must be their alarms and the topic they page.
            replica = alert_topic(
                f"{name}-replica",
                name_prefix=args.name_prefix,
                account=account,
                emails=args.alarm_emails,
                tags=tags,
                parent=self,
                region=args.replica_region,
            )
            self.bucket_alarms.append(
                BucketAlarms(
                    f"{name}-replica-bucket-alarms",
                    BucketAlarmsArgs(
                        name_prefix=args.name_prefix,
                        topic_arn=replica.topic.arn,
                        buckets=args.replica_buckets,
                        limits=limits(args.replica_buckets),
                        region=args.replica_region,
                        tags=tags,
                    ),
                    opts=child,
                )
            )
        self.budget = CostBudget(
            f"{name}-budget",
            CostBudgetArgs(
                budget_name=f"{args.name_prefix}-monthly",
                monthly_limit_usd=args.monthly_budget_usd,
                cost_tag=("tier", args.tier),
                topic_arn=self.topic.arn,
                emails=args.alarm_emails,
                tags=tags,
            ),
            opts=child,
        )

        self.workspace_arn = self.workspace.arn
        self.prometheus_endpoint = self.workspace.prometheus_endpoint
        self.topic_arn = self.topic.arn
        self.register_outputs(
            {
                "workspace_arn": self.workspace_arn,
                "prometheus_endpoint": self.prometheus_endpoint,
                "topic_arn": self.topic_arn,
                "scraper_arn": self.scraper.arn,
            }
        )
