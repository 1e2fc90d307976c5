"""SecureBucket: one S3 bucket with every guarantee the project requires, none of them optional.

Always: all four public-access blocks, BucketOwnerEnforced (ACLs disabled), default encryption, versioning,
lifecycle (abort incomplete multipart uploads, expire noncurrent versions), a bucket policy that denies plain
HTTP and TLS older than 1.2, and server access logging to the access-logs bucket.

The one sanctioned difference is the bucket that *receives* S3 server access logs (`receives_access_logs`): S3's
log delivery cannot write into SSE-KMS buckets (and ALB access logs support SSE-S3 only), so that bucket uses
SSE-S3 (AES256); and it does not log into itself (that would loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws

from infra.naming import check_bucket_name, check_region
from infra.policy_document import Statement, policy_document

ObjectLockMode = Literal["off", "governance", "compliance"]
OBJECT_LOCK_MODES: tuple[str, ...] = get_args(ObjectLockMode)
ABORT_INCOMPLETE_MULTIPART_DAYS = 7
MIN_TLS_VERSION = "1.2"


@dataclass(frozen=True, kw_only=True)
class SecureBucketArgs:
    bucket_name: str
    # Customer-managed key for SSE-KMS. Required, except for the bucket that receives access logs (must be None).
    kms_key_arn: pulumi.Input[str] | None
    receives_access_logs: bool = False
    # Name of the bucket server access logs go to (same region). Required unless receives_access_logs.
    access_log_bucket: pulumi.Input[str] | None = None
    noncurrent_version_expiry_days: int
    # Expire current versions after this many days (snapshots, access logs); None keeps them until deleted.
    expiry_days: int | None = None
    object_lock: ObjectLockMode = "off"
    object_lock_retention_days: int | None = None
    # Extra (Allow) statements for the bucket policy, e.g. log delivery into the access-logs bucket.
    extra_policy_statements: Sequence[Statement] = ()
    # Set for buckets outside the stack's region (replicas): recorded on every child so the region is visible.
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: SecureBucketArgs) -> None:
    check_bucket_name("bucket_name", args.bucket_name)
    if args.receives_access_logs:
        if args.kms_key_arn is not None:
            raise ValueError(
                f"kms_key_arn: must be None for the access-logs bucket {args.bucket_name!r} "
                "(S3 server access log delivery cannot write SSE-KMS objects)"
            )
        if args.access_log_bucket is not None:
            raise ValueError(
                f"access_log_bucket: the access-logs bucket {args.bucket_name!r} must not log into a bucket"
            )
        if args.object_lock != "off":
            raise ValueError(f"object_lock: {args.object_lock!r} is not supported on the access-logs bucket")
    else:
        if args.kms_key_arn is None:
            raise ValueError(f"kms_key_arn: required for bucket {args.bucket_name!r} (every data bucket is SSE-KMS)")
        if args.access_log_bucket is None:
            raise ValueError(f"access_log_bucket: required for bucket {args.bucket_name!r} (server access logging)")
    if args.noncurrent_version_expiry_days < 1:
        raise ValueError(f"noncurrent_version_expiry_days: {args.noncurrent_version_expiry_days!r} must be >= 1")
    if args.expiry_days is not None and args.expiry_days < 1:
        raise ValueError(f"expiry_days: {args.expiry_days!r} must be >= 1 or None")
    if args.object_lock not in OBJECT_LOCK_MODES:
        raise ValueError(f"object_lock: {args.object_lock!r}; allowed: {', '.join(OBJECT_LOCK_MODES)}")
    if args.object_lock != "off" and (args.object_lock_retention_days or 0) < 1:
        raise ValueError(
            f"object_lock_retention_days: {args.object_lock_retention_days!r} must be >= 1 with object_lock "
            f"{args.object_lock!r}"
        )
    if args.object_lock == "off" and args.object_lock_retention_days is not None:
        raise ValueError("object_lock_retention_days: must be None when object_lock is 'off'")
    if args.region is not None:
        check_region("region", args.region)


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning
    policy: aws.s3.BucketPolicy

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        region = args.region  # None: the provider's region
        locked = args.object_lock != "off"

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            # Object Lock can only be switched on when the bucket is created.
            object_lock_enabled=locked,
            # Never let `pulumi destroy` empty a bucket: deleting data takes a deliberate, separate step.
            force_destroy=False,
            tags={**args.tags, "Name": args.bucket_name},
            opts=child,
            region=region,
        )
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        bucket_id = self.bucket.id

        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
            region=region,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            # ACLs off: access is decided by IAM and the bucket policy only.
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
            region=region,
        )
        sse_rule: aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict
        if args.receives_access_logs:
            # SSE-S3 here on purpose: S3 server access log delivery (and ALB log delivery) cannot write to a bucket
            # whose default encryption is SSE-KMS. Access logs hold request metadata, not page content.
            sse_rule = {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": False,
            }
        else:
            sse_rule = {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": args.kms_key_arn,
                },
                # S3 Bucket Keys cut KMS requests (and cost) by orders of magnitude for busy buckets.
                "bucket_key_enabled": True,
            }
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[sse_rule],
            opts=child,
            region=region,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
            region=region,
        )

        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_MULTIPART_DAYS},
            },
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_expiry_days},
            },
        ]
        if args.expiry_days is not None:
            rules.append(
                {
                    "id": "expire-current-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.expiry_days},
                }
            )
        else:
            rules.append(
                {
                    "id": "remove-expired-delete-markers",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"expired_object_delete_marker": True},
                }
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=rules,
            # Lifecycle rules on a versioned bucket must wait for versioning to be on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
            region=region,
        )

        if locked:
            mode = "COMPLIANCE" if args.object_lock == "compliance" else "GOVERNANCE"
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=bucket_id,
                object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": mode, "days": args.object_lock_retention_days}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
                region=region,
            )

        if args.access_log_bucket is not None:
            aws.s3.BucketLogging(
                f"{name}-logging",
                bucket=bucket_id,
                target_bucket=args.access_log_bucket,
                target_prefix=f"{args.bucket_name}/",
                # Date-partitioned keys keep Athena queries over the logs cheap.
                target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
                opts=child,
                region=region,
            )

        arn, objects = self.bucket.arn, self.bucket.arn.apply(lambda a: f"{a}/*")
        everyone = [{"type": "*", "identifiers": ["*"]}]
        statements: list[Statement] = [
            {
                "sid": "DenyInsecureTransport",
                "effect": "Deny",
                "principals": everyone,
                "actions": ["s3:*"],
                "resources": [arn, objects],
                "conditions": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
            },
            {
                "sid": "DenyOutdatedTls",
                "effect": "Deny",
                "principals": everyone,
                "actions": ["s3:*"],
                "resources": [arn, objects],
                "conditions": [{"test": "NumericLessThan", "variable": "s3:TlsVersion", "values": [MIN_TLS_VERSION]}],
            },
        ]
        if not args.receives_access_logs:
            # Default encryption covers uploads that name no algorithm; this refuses the ones that explicitly ask for
            # something weaker (SSE-S3), so every object here is under the customer-managed key.
            statements.append(
                {
                    "sid": "DenyNonKmsUploads",
                    "effect": "Deny",
                    "principals": everyone,
                    "actions": ["s3:PutObject"],
                    "resources": [objects],
                    "conditions": [
                        {
                            "test": "StringNotEqualsIfExists",
                            "variable": "s3:x-amz-server-side-encryption",
                            "values": ["aws:kms"],
                        }
                    ],
                }
            )
        statements.extend(args.extra_policy_statements)
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=policy_document(statements, opts=invoke_opts),
            # The public-access block must exist first, so no window where the policy is judged without it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
            region=region,
        )
        self.register_outputs({"name": self.name, "arn": self.arn})
