"""Cache: the ElastiCache (Valkey or Redis OSS) replication group behind rate limits and the job queue.

Private subnets only, reachable on 6379 from the EKS nodes' security group and nothing else; encrypted at rest
with a customer-managed key and in transit (TLS required, no plaintext port); AUTH token from Secrets Manager.
Multi-AZ with automatic failover where the config asks for it (prod), a single node otherwise.
The cache has its own key (same guarantees as infra/keys.py's): what it holds (job payloads, rate-limit state)
is neither S3 data nor a secret, and a key per purpose keeps grants and CloudTrail readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws

from infra.keys import customer_managed_key, key_policy
from infra.naming import LOG_RETENTION_DAYS, check_region

PORT = 6379
CacheEngine = Literal["valkey", "redis"]
ENGINES: tuple[str, ...] = get_args(CacheEngine)
# The major.minor versions ElastiCache runs for each engine (node-based clusters), per "Supported engines and
# versions": https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html. botocore's model types
# EngineVersion as a free string, so this list is the only offline check; CreateReplicationGroup refuses others.
ENGINE_VERSIONS = {"valkey": ("7.2", "8.0", "8.1", "8.2", "9.0", "9.1"), "redis": ("6.2", "7.0", "7.1")}
# Automatic snapshots kept (CreateReplicationGroup SnapshotRetentionLimit): 0 turns them off, 35 is the most.
SNAPSHOT_RETENTION_DAYS = range(0, 36)
NUM_CACHE_CLUSTERS = (1, 6)  # a primary and up to five replicas (cluster mode disabled)


@dataclass(frozen=True, kw_only=True)
class CacheArgs:
    replication_group_id: str  # physical name, at most 40 characters (ElastiCache's limit)
    engine: CacheEngine
    engine_version: str
    node_type: str
    num_cache_clusters: int
    multi_az: bool
    snapshot_retention_days: int
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    allowed_security_group_id: pulumi.Input[str]  # the EKS nodes
    region: str
    auth_token: pulumi.Input[str]  # a secret Output from infra/secrets.py
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: CacheArgs) -> None:
    check_region("region", args.region)
    rg = args.replication_group_id
    if not 1 <= len(rg) <= 40 or not rg[0].isalpha() or rg.endswith("-") or "--" in rg or rg != rg.lower():
        raise ValueError(f"replication_group_id: {rg!r} must be 1-40 lowercase characters, start with a letter")
    if args.engine not in ENGINES:
        raise ValueError(f"engine: {args.engine!r}; allowed: {', '.join(ENGINES)}")
    if args.engine_version not in ENGINE_VERSIONS[args.engine]:
        raise ValueError(
            f"engine_version: {args.engine_version!r} is not an ElastiCache {args.engine} version; "
            f"allowed: {', '.join(ENGINE_VERSIONS[args.engine])}"
        )
    if not args.node_type.startswith("cache."):
        raise ValueError(f"node_type: {args.node_type!r} is not an ElastiCache node type")
    lo, hi = NUM_CACHE_CLUSTERS
    if not lo <= args.num_cache_clusters <= hi:
        raise ValueError(f"num_cache_clusters: {args.num_cache_clusters} must be between {lo} and {hi}")
    if args.multi_az and args.num_cache_clusters < 2:
        raise ValueError(f"num_cache_clusters: multi_az needs at least 2 nodes (got {args.num_cache_clusters})")
    if args.snapshot_retention_days not in SNAPSHOT_RETENTION_DAYS:
        lo, hi = SNAPSHOT_RETENTION_DAYS[0], SNAPSHOT_RETENTION_DAYS[-1]
        raise ValueError(f"snapshot_retention_days: {args.snapshot_retention_days} must be between {lo} and {hi}")
    if len(args.subnet_ids) < (2 if args.multi_az else 1):
        raise ValueError("subnet_ids: multi_az needs subnets in at least two AZs")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(f"log_retention_days: {args.log_retention_days} is not a CloudWatch Logs retention value")


class Cache(pulumi.ComponentResource):
    key: aws.kms.Key
    replication_group: aws.elasticache.ReplicationGroup
    primary_endpoint: pulumi.Output[str]
    port: int
    security_group_id: pulumi.Output[str]
    member_clusters: list[str]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        tags = dict(args.tags)
        rg_id = args.replication_group_id

        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{rg_id}-cache",
            description=f"ElastiCache {rg_id}: {PORT} from the EKS nodes only",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in-nodes",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            referenced_security_group_id=args.allowed_security_group_id,
            description="EKS nodes (api, worker)",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-out-nodes",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            referenced_security_group_id=args.allowed_security_group_id,
            description="replies only reach the nodes",
            tags=tags,
            opts=child,
        )
        self.security_group_id = sg.id

        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=rg_id,
            description=f"private subnets of {rg_id}",
            subnet_ids=list(args.subnet_ids),
            tags=tags,
            opts=child,
        )
        slow_log = aws.cloudwatch.LogGroup(
            f"{name}-slow-log",
            name=f"/aws/elasticache/{rg_id}/slow-log",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            opts=child,
        )

        caller = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke).partition
        self.key, _alias = customer_managed_key(
            f"{name}-key",
            alias=f"alias/{rg_id}-cache",
            description=f"ElastiCache {rg_id} at-rest encryption",
            policy=key_policy(
                "cache", account_id=caller.account_id, partition=partition, region=args.region, opts=invoke
            ),
            tags=tags,
            opts=child,
        )

        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-rg",
            replication_group_id=rg_id,
            description=f"visionrag rate limits and job queue ({rg_id})",
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            port=PORT,
            num_cache_clusters=args.num_cache_clusters,
            multi_az_enabled=args.multi_az,
            automatic_failover_enabled=args.multi_az,
            subnet_group_name=subnet_group.name,
            security_group_ids=[sg.id],
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=pulumi.Output.secret(args.auth_token),
            auth_token_update_strategy="ROTATE",  # noqa: S106 - a strategy name, not a secret
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="03:00-04:00",
            maintenance_window="sun:05:00-sun:06:00",
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            tags=tags,
            opts=child,
        )
        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.port = PORT
        # ElastiCache names member nodes <group id>-001, -002, ...: the CloudWatch dimension of per-node alarms.
        self.member_clusters = [f"{rg_id}-{i:03d}" for i in range(1, args.num_cache_clusters + 1)]
        self.register_outputs(
            {"primary_endpoint": self.primary_endpoint, "port": self.port, "security_group_id": self.security_group_id}
        )
