"""Who may touch what in AWS: the IAM statements of each workload's IRSA role, and nothing more.

The api, the worker and the snapshot job read and write objects in their own bucket only; the restore drill only
reads the snapshots bucket (it presigns the URLs Qdrant downloads). Every process that acts writes audit events
(app/core/audit.py): the api, the worker (its collection-migrate init container), the snapshot job and the drill
may append to the audit bucket, never read or delete there; the embedder only reads the `models` bucket;
`secrets-reader` (the SecretStore's ServiceAccount) only reads this project's secrets. KMS use is only via the
owning service (identity.kms_via).
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
    restore_drill: bool = False,
) -> dict[str, list[Statement]]:
    """ServiceAccount -> the IAM statements of its role (`bucket_arns` keyed pages/snapshots/models/audit)."""
    pages, snaps, models = (bucket_arns[b] for b in ("pages", "snapshots", "models"))
    kms_rw = kms_via("S3KeyUse", s3_key_arn, "s3", region, encrypt=True)
    # Audit records are append-only: write, never read or delete (Object Lock keeps them; new keys every time).
    audit: Statement = {
        "Sid": "AuditAppend",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [pulumi.Output.concat(bucket_arns["audit"], "/*")],
    }
    scopes: dict[str, list[Statement]] = {
        "api": [*s3_objects("Pages", pages, S3_READ_WRITE), audit, kms_rw],
        "worker": [*s3_objects("Pages", pages, S3_READ_WRITE), audit, kms_rw],
        "snapshots": [*s3_objects("Snapshots", snaps, S3_READ_WRITE), audit, kms_rw],
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
    if restore_drill:
        # Reads snapshots (a presigned GET is only as good as its signer's rights, KMS decrypt included) and
        # appends its audit events (encrypt: the audit bucket's key); it never writes or deletes a snapshot.
        scopes["restore-drill"] = [*s3_objects("Snapshots", snaps, S3_READ), audit, kms_rw]
    return scopes
