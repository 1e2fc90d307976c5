"""Storage: the project's S3 buckets (pages, snapshots, audit, models, access-logs) and, where asked for,
cross-region replication of pages and snapshots into a second region with the same guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.bucket import OBJECT_LOCK_MODES, ObjectLockMode, SecureBucket, SecureBucketArgs
from infra.bucket_names import ACCESS_LOGS, ACCOUNT_ID_LENGTH, BUCKETS, REPLICA_SUFFIX, REPLICATED, bucket_names
from infra.keys import customer_managed_key, key_policy
from infra.naming import check_bucket_name, check_name_prefix, check_region
from infra.policy_document import Statement, policy_document

__all__ = ["ACCESS_LOGS", "BUCKETS", "REPLICATED", "Storage", "StorageArgs", "bucket_names"]


@dataclass(frozen=True, kw_only=True)
class StorageArgs:
    name_prefix: str  # "<prefix>-<tier>": buckets are "<name_prefix>-<account_id>-<region>-<purpose>"
    # The owning account (12 digits): bucket names are global, the account id keeps ours unique (bucket_names.py).
    account_id: str
    region: str
    s3_key_arn: pulumi.Input[str]
    noncurrent_version_expiry_days: int
    snapshot_retention_days: int
    access_log_retention_days: int
    audit_object_lock: ObjectLockMode
    audit_retention_days: int
    replication: bool
    replica_region: str | None = None
    # Key prefix under which the ALB writes its access logs into the access-logs bucket.
    alb_log_prefix: str = "alb"
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: StorageArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    check_region("region", args.region)
    if len(args.account_id) != ACCOUNT_ID_LENGTH or not args.account_id.isdigit():
        raise ValueError(f"account_id: {args.account_id!r} is not a {ACCOUNT_ID_LENGTH}-digit AWS account id")
    for name in ("noncurrent_version_expiry_days", "snapshot_retention_days", "access_log_retention_days"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name}: {getattr(args, name)!r} must be >= 1")
    if args.audit_object_lock not in OBJECT_LOCK_MODES:
        raise ValueError(f"audit_object_lock: {args.audit_object_lock!r}; allowed: {', '.join(OBJECT_LOCK_MODES)}")
    if args.audit_retention_days < 1:
        raise ValueError(f"audit_retention_days: {args.audit_retention_days!r} must be >= 1")
    if args.replication:
        if args.replica_region is None:
            raise ValueError("replica_region: required when replication is on")
        check_region("replica_region", args.replica_region)
        if args.replica_region == args.region:
            raise ValueError(f"replica_region: {args.replica_region!r} must differ from region {args.region!r}")
    elif args.replica_region is not None:
        raise ValueError(f"replica_region: {args.replica_region!r} given but replication is off")
    if args.alb_log_prefix.startswith("/") or args.alb_log_prefix.endswith("/") or not args.alb_log_prefix:
        raise ValueError(f"alb_log_prefix: {args.alb_log_prefix!r} must be non-empty without leading/trailing '/'")
    for key, name in bucket_names(args.name_prefix, args.account_id, args.region, args.replica_region).items():
        check_bucket_name(f"name_prefix (bucket {key!r})", name)


class Storage(pulumi.ComponentResource):
    buckets: dict[str, SecureBucket]
    replicas: dict[str, SecureBucket]
    names: dict[str, pulumi.Output[str]]
    physical_names: dict[str, str]
    arns: dict[str, pulumi.Output[str]]
    replica_key: aws.kms.Key | None
    replication_role: aws.iam.Role | None

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Storage", name, None, opts)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        self._invoke_opts = invoke_opts
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        partition = aws.get_partition_output(opts=invoke_opts).partition
        self._account_id = identity.account_id
        names = bucket_names(args.name_prefix, args.account_id, args.region, args.replica_region)

        access_logs = self._access_logs_bucket(
            f"{name}-{ACCESS_LOGS}",
            names[ACCESS_LOGS],
            args,
            alb_delivery=True,
            region=None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.buckets = {ACCESS_LOGS: access_logs}
        for purpose in ("pages", "snapshots", "audit", "models"):
            audit = purpose == "audit"
            self.buckets[purpose] = SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    bucket_name=names[purpose],
                    kms_key_arn=args.s3_key_arn,
                    access_log_bucket=access_logs.name,
                    # Object Lock keeps locked versions regardless: expiring them earlier would be refused.
                    noncurrent_version_expiry_days=(
                        max(args.noncurrent_version_expiry_days, args.audit_retention_days)
                        if audit
                        else args.noncurrent_version_expiry_days
                    ),
                    expiry_days=args.snapshot_retention_days if purpose == "snapshots" else None,
                    object_lock=args.audit_object_lock if audit else "off",
                    object_lock_retention_days=(
                        args.audit_retention_days if audit and args.audit_object_lock != "off" else None
                    ),
                    tags={**args.tags, "purpose": purpose},
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.replicas = {}
        self.replica_key = None
        self.replication_role = None
        if args.replication:
            assert args.replica_region is not None  # validated above
            self._replication(name, args, names, identity.account_id, partition, args.replica_region)

        self.names = {k: b.name for k, b in self.buckets.items()}
        # Plain physical names (replicas under "<purpose>-replica"): known before any bucket exists, for the
        # per-bucket alarms (infra/bucket_alarms.py) and the policy that matches them to buckets by name.
        self.physical_names = {k: v for k, v in names.items() if k in self.buckets or k in self._replica_keys()}
        self.arns = {k: b.arn for k, b in self.buckets.items()}
        self.register_outputs(
            {
                "names": self.names,
                "arns": self.arns,
                "replica_names": {k: b.name for k, b in self.replicas.items()},
            }
        )

    def _replica_keys(self) -> set[str]:
        return {f"{k}-{REPLICA_SUFFIX}" for k in self.replicas}

    def _access_logs_bucket(
        self,
        name: str,
        bucket_name: str,
        args: StorageArgs,
        *,
        alb_delivery: bool,
        region: str | None,
        opts: pulumi.ResourceOptions,
    ) -> SecureBucket:
        objects = f"arn:aws:s3:::{bucket_name}/*"
        statements: list[Statement] = [
            {
                # S3 server access logging (the logging service principal, not ACLs: ownership is enforced).
                "sid": "S3ServerAccessLogDelivery",
                "effect": "Allow",
                "principals": [{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}],
                "actions": ["s3:PutObject"],
                "resources": [objects],
                "conditions": [
                    {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [self._account_id]},
                    # Only this stack's own buckets may deliver logs here.
                    {"test": "ArnLike", "variable": "aws:SourceArn", "values": [f"arn:aws:s3:::{args.name_prefix}-*"]},
                ],
            }
        ]
        if alb_delivery:
            elb_account = aws.elb.get_service_account_output(region=args.region, opts=self._invoke_opts).arn
            statements.append(
                {
                    # Regions older than August 2022 deliver ALB logs as the regional ELB account, newer ones as
                    # the log-delivery service principal; both are limited to this account's ALB log prefix.
                    "sid": "AlbAccessLogDelivery",
                    "effect": "Allow",
                    "principals": [
                        {"type": "AWS", "identifiers": [elb_account]},
                        {"type": "Service", "identifiers": ["logdelivery.elasticloadbalancing.amazonaws.com"]},
                    ],
                    "actions": ["s3:PutObject"],
                    "resources": [
                        pulumi.Output.concat(
                            "arn:aws:s3:::", bucket_name, "/", args.alb_log_prefix, "/AWSLogs/", self._account_id, "/*"
                        )
                    ],
                }
            )
        return SecureBucket(
            name,
            SecureBucketArgs(
                bucket_name=bucket_name,
                kms_key_arn=None,
                receives_access_logs=True,
                noncurrent_version_expiry_days=args.noncurrent_version_expiry_days,
                expiry_days=args.access_log_retention_days,
                extra_policy_statements=statements,
                region=region,
                tags={**args.tags, "purpose": ACCESS_LOGS},
            ),
            opts=opts,
        )

    def _replication(
        self,
        name: str,
        args: StorageArgs,
        names: dict[str, str],
        account_id: pulumi.Output[str],
        partition: pulumi.Output[str],
        replica_region: str,
    ) -> None:
        # An explicit provider for the replica region: the stack's default provider can only create resources in
        # the stack's region.
        provider = aws.Provider(
            f"{name}-replica-provider", region=replica_region, opts=pulumi.ResourceOptions(parent=self)
        )
        in_replica = pulumi.ResourceOptions(parent=self, provider=provider)
        replica_key, _ = customer_managed_key(
            f"{name}-replica-key",
            alias=f"alias/{args.name_prefix}-s3-replica",
            description=f"{args.name_prefix}: replicas of the pages and snapshots buckets in {replica_region}",
            policy=key_policy(
                "s3", account_id=account_id, partition=partition, region=replica_region, opts=self._invoke_opts
            ),
            tags={**args.tags, "purpose": "s3-replica"},
            region=replica_region,
            opts=in_replica,
        )
        self.replica_key = replica_key
        replica_logs = self._access_logs_bucket(
            f"{name}-{ACCESS_LOGS}-replica",
            names[f"{ACCESS_LOGS}-replica"],
            args,
            alb_delivery=False,
            region=replica_region,
            opts=pulumi.ResourceOptions(parent=self, providers=[provider]),
        )
        self.replicas[ACCESS_LOGS] = replica_logs
        for purpose in REPLICATED:
            self.replicas[purpose] = SecureBucket(
                f"{name}-{purpose}-replica",
                SecureBucketArgs(
                    bucket_name=names[f"{purpose}-replica"],
                    kms_key_arn=replica_key.arn,
                    access_log_bucket=replica_logs.name,
                    noncurrent_version_expiry_days=args.noncurrent_version_expiry_days,
                    expiry_days=args.snapshot_retention_days if purpose == "snapshots" else None,
                    region=replica_region,
                    tags={**args.tags, "purpose": f"{purpose}-replica"},
                ),
                opts=pulumi.ResourceOptions(parent=self, providers=[provider]),
            )

        sources = [self.buckets[p] for p in REPLICATED]
        targets = [self.replicas[p] for p in REPLICATED]
        trust = policy_document(
            [
                {
                    "effect": "Allow",
                    "actions": ["sts:AssumeRole"],
                    "principals": [{"type": "Service", "identifiers": ["s3.amazonaws.com"]}],
                    "conditions": [{"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account_id]}],
                }
            ],
            opts=self._invoke_opts,
        )
        role = aws.iam.Role(
            f"{name}-replication-role",
            name=f"{args.name_prefix}-s3-replication",
            description="S3 cross-region replication of the pages and snapshots buckets",
            assume_role_policy=trust,
            tags={**args.tags, "Name": f"{args.name_prefix}-s3-replication"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.replication_role = role

        def objects(bucket: SecureBucket) -> pulumi.Output[str]:
            return bucket.arn.apply(lambda a: f"{a}/*")

        def arns_and_objects(buckets: list[SecureBucket]) -> list[pulumi.Output[str]]:
            return [b.arn for b in buckets] + [objects(b) for b in buckets]

        permissions = policy_document(
            [
                {
                    "sid": "ReadSourceReplicationConfig",
                    "effect": "Allow",
                    "actions": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "resources": [b.arn for b in sources],
                },
                {
                    "sid": "ReadSourceObjectVersions",
                    "effect": "Allow",
                    "actions": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                    ],
                    "resources": [objects(b) for b in sources],
                },
                {
                    "sid": "WriteReplicas",
                    "effect": "Allow",
                    "actions": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    "resources": [objects(b) for b in targets],
                },
                {
                    # Decrypt source objects only through S3 in the source region, only for the source buckets.
                    "sid": "DecryptSourceObjects",
                    "effect": "Allow",
                    "actions": ["kms:Decrypt"],
                    "resources": [args.s3_key_arn],
                    "conditions": [
                        {
                            "test": "StringEquals",
                            "variable": "kms:ViaService",
                            "values": [f"s3.{args.region}.amazonaws.com"],
                        },
                        {
                            "test": "StringLike",
                            "variable": "kms:EncryptionContext:aws:s3:arn",
                            "values": arns_and_objects(sources),
                        },
                    ],
                },
                {
                    "sid": "EncryptReplicas",
                    "effect": "Allow",
                    "actions": ["kms:Encrypt", "kms:GenerateDataKey"],
                    "resources": [replica_key.arn],
                    "conditions": [
                        {
                            "test": "StringEquals",
                            "variable": "kms:ViaService",
                            "values": [f"s3.{replica_region}.amazonaws.com"],
                        },
                        {
                            "test": "StringLike",
                            "variable": "kms:EncryptionContext:aws:s3:arn",
                            "values": arns_and_objects(targets),
                        },
                    ],
                },
            ],
            opts=self._invoke_opts,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-replication-policy",
            name="replicate-pages-and-snapshots",
            role=role.id,
            policy=permissions,
            opts=pulumi.ResourceOptions(parent=self),
        )

        for purpose, source, target in zip(REPLICATED, sources, targets, strict=True):
            aws.s3.BucketReplicationConfig(
                f"{name}-{purpose}-replication",
                bucket=source.bucket.id,
                role=role.arn,
                rules=[
                    {
                        "id": f"{purpose}-to-{replica_region}",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "delete_marker_replication": {"status": "Enabled"},
                        # Every object here is SSE-KMS: without this S3 silently skips them.
                        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
                        "destination": {
                            "bucket": target.arn,
                            "storage_class": "STANDARD",
                            "encryption_configuration": {"replica_kms_key_id": replica_key.arn},
                        },
                    }
                ],
                # Replication requires versioning on both sides and a role that can already act.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[source.versioning, target.versioning, role_policy]
                ),
            )
