"""Who may touch what in AWS: the IAM statements of each workload's IRSA role, and nothing more.

The api, the worker and the snapshot job read and write objects in their own bucket only (the api also appends
audit records, never reads them); the embedder only reads the `models` bucket; `secrets-reader` (the SecretStore's
ServiceAccount) only reads this project's secrets. KMS use is only via the owning service (identity.kms_via).
Qdrant and the frontend call no AWS API and get no role (workloads.py gives them plain ServiceAccounts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from infra.workloads.identity import S3_READ, S3_READ_WRITE, Statement, kms_via, s3_objects


def workload_scopes(
    *,
    region: str,
    bucket_arns: Mapping[str, pulumi.Input[str]],
    s3_key_arn: pulumi.Input[str],
    secrets_key_arn: pulumi.Input[str],
    secret_arns: Sequence[pulumi.Input[str]],
) -> dict[str, list[Statement]]:
    """ServiceAccount -> the IAM statements of its role (`bucket_arns` keyed pages/snapshots/models/audit)."""
    pages, snaps, models = (bucket_arns[b] for b in ("pages", "snapshots", "models"))
    kms_rw = kms_via("S3KeyUse", s3_key_arn, "s3", region, encrypt=True)
    return {
        "api": [
            *s3_objects("Pages", pages, S3_READ_WRITE),
            # Audit records are append-only from the api: write, never read or delete (Object Lock).
            {
                "Sid": "AuditAppend",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [pulumi.Output.concat(bucket_arns["audit"], "/*")],
            },
            kms_rw,
        ],
        "worker": [*s3_objects("Pages", pages, S3_READ_WRITE), kms_rw],
        "snapshots": [*s3_objects("Snapshots", snaps, S3_READ_WRITE), kms_rw],
        "embedder": [
            *s3_objects("Models", models, S3_READ),
            kms_via("S3KeyDecrypt", s3_key_arn, "s3", region, encrypt=False),
        ],
        "secrets-reader": [
            {
                "Sid": "ReadProjectSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": list(secret_arns),
            },
            kms_via("SecretsKeyDecrypt", secrets_key_arn, "secretsmanager", region, encrypt=False),
        ],
    }
