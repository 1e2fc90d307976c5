"""policy_document: render IAM/KMS/S3 policy statements through `aws.iam.get_policy_document`.

Rendering through the provider (not hand-built JSON) means the provider normalises the document and the offline
engine records exactly the JSON a deployment would send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
import pulumi_aws as aws

Statement = Mapping[str, Any]


def policy_document(statements: Sequence[Statement], *, opts: pulumi.InvokeOutputOptions) -> pulumi.Output[str]:
    """JSON of a policy with `statements` (dicts in the provider's snake_case shape; values may be Outputs).

    The engine resolves Outputs nested in invoke arguments before the invoke runs; pulumi_aws's TypedDicts
    declare plain strings there, hence the one cast.
    """
    return aws.iam.get_policy_document_output(statements=cast(Any, list(statements)), opts=opts).json
