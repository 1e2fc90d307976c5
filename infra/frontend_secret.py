"""FrontendAuthSecret: the frontend's server-side secrets in one Secrets Manager secret, `<prefix>/frontend-auth`.

JSON `{"nextauth_secret": ..., "client_secret": ...}`: Auth.js's session-encryption secret (48 alphanumerics,
generated here with `pulumi_random`; Auth.js wants >= 32 characters) and the Cognito app client's secret
(infra/identity.py). Encrypted with the secrets key, synced into the cluster by an ExternalSecret
(infra/workloads/app_secrets.py) and read by the frontend as NEXTAUTH_SECRET / AUTH_CLIENT_SECRET. Rotation is a
deploy: bump `rotation_generation` (a keeper of the generated value), then roll the frontend (every session cookie
becomes invalid, users sign in again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.naming import SECRET_RECOVERY_WINDOW_DAYS

# The `<prefix>/<key>` secret name and its key in WorkloadsArgs.secret_names (a name, not a value).
SECRET_KEY = "frontend-auth"  # noqa: S105
NEXTAUTH_SECRET_LENGTH = 48


@dataclass(frozen=True, kw_only=True)
class FrontendAuthSecretArgs:
    name_prefix: str
    kms_key_arn: pulumi.Input[str]
    client_secret: pulumi.Output[str]  # the Cognito app client's secret (a secret Output)
    recovery_window_days: int
    rotation_generation: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)


class FrontendAuthSecret(pulumi.ComponentResource):
    secret: aws.secretsmanager.Secret
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: FrontendAuthSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not isinstance(args.client_secret, pulumi.Output):
            raise ValueError("client_secret: must be a secret pulumi.Output, never a plain string")
        if args.recovery_window_days not in SECRET_RECOVERY_WINDOW_DAYS:
            raise ValueError(
                f"recovery_window_days: {args.recovery_window_days!r}; allowed: 0 (delete without recovery) or 7-30"
            )
        super().__init__("visionrag:infra:FrontendAuthSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        session = random.RandomPassword(
            f"{name}-nextauth-secret",
            length=NEXTAUTH_SECRET_LENGTH,
            special=False,
            min_upper=4,
            min_lower=4,
            min_numeric=4,
            keepers={"generation": str(args.rotation_generation)},
            opts=child,
        )
        secret_name = f"{args.name_prefix}/{SECRET_KEY}"
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=secret_name,
            description="Frontend server secrets: Auth.js session secret and the Cognito app client secret",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            tags={**args.tags, "Name": secret_name},
            opts=child,
        )
        value: pulumi.Input[str] = pulumi.Output.all(session.result, args.client_secret).apply(
            lambda v: json.dumps({"nextauth_secret": str(v[0]), "client_secret": str(v[1])}, sort_keys=True)
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=child,
        )
        self.name = self.secret.name
        self.arn = self.secret.arn
        self.register_outputs({"name": self.name, "arn": self.arn})
