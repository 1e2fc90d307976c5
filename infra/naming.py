"""Validation of the names and identifiers components receive in their Args (shared by the platform components).

Components raise ValueError naming the Args field and the bad value, before any child resource exists.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
# AWS region names (us-east-1, eu-central-2, us-gov-west-1); stacks/config validates region keys with it too.
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# S3's rules for bucket names (general purpose buckets): 3-63 characters, lowercase letters, digits, '-' and '.',
# starting and ending with a letter or digit. We never use '.' (it breaks virtual-hosted-style TLS).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
S3_BUCKET_NAME_MAX = 63
# The only retention periods CloudWatch Logs accepts (PutRetentionPolicy; tests compare this with botocore's model).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

# Secrets Manager's DeleteSecret: RecoveryWindowInDays is 7-30, or 0 for ForceDeleteWithoutRecovery (the provider
# maps 0 to that flag). Only 0 lets a destroyed stack be re-created at once: a secret pending deletion keeps its
# name reserved for the whole window.
SECRET_RECOVERY_WINDOW_DAYS = frozenset({0, *range(7, 31)})


def check_name_prefix(field: str, value: str) -> None:
    if not _PREFIX.match(value) or value.endswith("-") or "--" in value:
        raise ValueError(
            f"{field}: {value!r} is not a valid name prefix (lowercase letters, digits and single '-', "
            "starting with a letter, at most 41 characters)"
        )


def check_region(field: str, value: str) -> None:
    if not REGION.match(value):
        raise ValueError(f"{field}: {value!r} is not an AWS region name (like 'us-east-1')")


def check_bucket_name(field: str, value: str) -> None:
    if len(value) > S3_BUCKET_NAME_MAX:
        raise ValueError(
            f"{field}: bucket name {value!r} is {len(value)} characters; S3 allows at most {S3_BUCKET_NAME_MAX}"
        )
    if not _BUCKET.match(value) or "--" in value:
        raise ValueError(
            f"{field}: {value!r} is not a valid S3 bucket name (3-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
