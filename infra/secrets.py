"""Secrets: the project's Secrets Manager secrets, encrypted with the secrets key.

| secret | value | where it comes from |
|---|---|---|
| `<prefix>/qdrant-api-key` | Qdrant's API key | generated here (`pulumi_random`, 48 alphanumerics) |
| `<prefix>/cache-auth` | ElastiCache AUTH token | generated here (64 alphanumerics: ElastiCache refuses specials) |
| `<prefix>/llm-api-key` | the LLM endpoint's API key (only when set) | Pulumi secret config `visionrag:llmApiKey` |
| `<prefix>/jwt` | JWT validation settings (JSON) | the stack's Cognito pool (infra/identity.py) or `workloads.auth` |
| `<prefix>/sentry-dsn` | Sentry DSN (only when set) | Pulumi secret config `visionrag:sentryDsn` |

Rotation. Secrets Manager's own rotation needs a rotation Lambda per secret type; AWS ships none for a Qdrant key,
an ElastiCache AUTH token held by us or a third-party API key, so no `SecretRotation` is declared (one pointing at a
Lambda that does not exist would fail every rotation). Rotation is a deploy: bump `rotation_generation` (a keeper of
every generated value) or `pulumi up --replace <urn of the RandomPassword>`, then roll the consumers; the runbook
is docs/platform.md. The LLM key is rotated at its provider and set with `pulumi config set --secret`. The JWT secret
holds validation settings only: the API accepts asymmetric tokens from the OIDC issuer and refuses HS*, so there is
no shared signing key to generate or rotate here.

Nothing secret is ever a plain input: every value passes through a secret Output, so the state, the preview and
the offline record only ever show it as "[secret]".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.naming import SECRET_RECOVERY_WINDOW_DAYS, check_name_prefix

# The longest window Secrets Manager allows before a deleted secret is gone: time to notice and restore. The
# default of SecretsArgs; tiers that destroy and re-create stacks (dev) pass 0 (no recovery, name free at once).
RECOVERY_WINDOW_DAYS = 30
QDRANT_KEY_LENGTH = 48
CACHE_TOKEN_LENGTH = 64  # ElastiCache AUTH tokens: 16-128 printable characters
JWT_PROVIDERS = ("oidc", "cognito")  # app/core/settings.py AUTH_PROVIDER
ASYMMETRIC_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


@dataclass(frozen=True, kw_only=True)
class JwtSettings:
    # Outputs when the stack's own Cognito pool is the issuer (its id is known only after create).
    issuer_url: pulumi.Input[str]
    audience: pulumi.Input[str]
    jwks_url: pulumi.Input[str]
    algorithms: Sequence[str] = ("RS256", "ES256")
    # The api's AUTH_PROVIDER: "cognito" matches access tokens on `client_id` for this issuer (app/api/auth.py).
    provider: str = "oidc"


@dataclass(frozen=True, kw_only=True)
class SecretsArgs:
    name_prefix: str  # "<prefix>-<tier>": secret names are "<name_prefix>/<secret>"
    kms_key_arn: pulumi.Input[str]
    # None: no LLM key, so no secret (the api then answers POST /chat with 503). Otherwise a secret Output.
    llm_api_key: pulumi.Output[str] | None = None
    # None: no Sentry (no secret is created). Otherwise a secret Output, like llm_api_key.
    sentry_dsn: pulumi.Output[str] | None = None
    # None: the secret is created empty, to be filled by the operator before the API can start.
    jwt: JwtSettings | None = None
    # A keeper of every generated value: incrementing it regenerates them on the next `pulumi up` (rotation).
    rotation_generation: int = 1
    # Days a deleted secret stays restorable (7-30), or 0: deleted at once, its name free for a re-create.
    recovery_window_days: int = RECOVERY_WINDOW_DAYS
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: SecretsArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    if args.llm_api_key is not None and not isinstance(args.llm_api_key, pulumi.Output):
        raise ValueError(
            "llm_api_key: must be a secret pulumi.Output (pulumi.Config().get_secret) or None, never a plain string"
        )
    if args.sentry_dsn is not None and not isinstance(args.sentry_dsn, pulumi.Output):
        raise ValueError(
            "sentry_dsn: must be a secret pulumi.Output (pulumi.Config().require_secret) or None, never a plain string"
        )
    if args.recovery_window_days not in SECRET_RECOVERY_WINDOW_DAYS:
        raise ValueError(
            f"recovery_window_days: {args.recovery_window_days!r}; allowed: 0 (delete without recovery) or 7-30"
        )
    if args.rotation_generation < 1:
        raise ValueError(f"rotation_generation: {args.rotation_generation!r} must be >= 1")
    if args.jwt is not None:
        for name in ("issuer_url", "jwks_url"):
            value = getattr(args.jwt, name)
            if isinstance(value, str) and not value.startswith("https://"):
                raise ValueError(f"jwt.{name}: {value!r} must be an https:// URL")
        if isinstance(args.jwt.audience, str) and not args.jwt.audience:
            raise ValueError("jwt.audience: must not be empty")
        if args.jwt.provider not in JWT_PROVIDERS:
            raise ValueError(f"jwt.provider: {args.jwt.provider!r} not allowed; allowed: {', '.join(JWT_PROVIDERS)}")
        bad = sorted(set(args.jwt.algorithms) - ASYMMETRIC_JWT_ALGORITHMS)
        if bad or not args.jwt.algorithms:
            raise ValueError(
                f"jwt.algorithms: {list(args.jwt.algorithms)!r} not allowed ({bad or 'empty'}); "
                f"allowed: {sorted(ASYMMETRIC_JWT_ALGORITHMS)}"
            )


class Secrets(pulumi.ComponentResource):
    qdrant_api_key: aws.secretsmanager.Secret
    jwt: aws.secretsmanager.Secret
    llm_api_key: aws.secretsmanager.Secret | None
    cache_auth: aws.secretsmanager.Secret
    sentry_dsn: aws.secretsmanager.Secret | None
    cache_auth_token: pulumi.Output[str]
    arns: list[pulumi.Output[str]]
    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Secrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keepers = {"generation": str(args.rotation_generation)}

        def secret(key: str, description: str) -> aws.secretsmanager.Secret:
            return aws.secretsmanager.Secret(
                f"{name}-{key}",
                name=f"{args.name_prefix}/{key}",
                description=description,
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.recovery_window_days,
                tags={**args.tags, "Name": f"{args.name_prefix}/{key}"},
                opts=child,
            )

        def version(key: str, target: aws.secretsmanager.Secret, value: pulumi.Input[str]) -> None:
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}-version",
                secret_id=target.id,
                # pulumi.Output.secret: the value stays encrypted in state and is "[secret]" in every preview.
                secret_string=pulumi.Output.secret(value),
                opts=child,
            )

        qdrant_value = random.RandomPassword(
            f"{name}-qdrant-api-key-value",
            length=QDRANT_KEY_LENGTH,
            special=False,
            min_upper=4,
            min_lower=4,
            min_numeric=4,
            keepers=keepers,
            opts=child,
        )
        self.qdrant_api_key = secret(
            "qdrant-api-key", "API key of the Qdrant cluster (api, worker and snapshots use it)"
        )
        version("qdrant-api-key", self.qdrant_api_key, qdrant_value.result)

        cache_value = random.RandomPassword(
            f"{name}-cache-auth-value",
            length=CACHE_TOKEN_LENGTH,
            # Alphanumerics only: ElastiCache refuses '@', '"' and '/' and other specials break redis:// URLs.
            special=False,
            min_upper=4,
            min_lower=4,
            min_numeric=4,
            keepers=keepers,
            opts=child,
        )
        self.cache_auth = secret("cache-auth", "AUTH token of the ElastiCache replication group")
        version("cache-auth", self.cache_auth, cache_value.result)
        token: pulumi.Input[str] = cache_value.result
        self.cache_auth_token = pulumi.Output.secret(token)

        self.llm_api_key = None
        if args.llm_api_key is not None:
            self.llm_api_key = secret("llm-api-key", "API key of the OpenAI-compatible LLM endpoint")
            version("llm-api-key", self.llm_api_key, args.llm_api_key)

        self.jwt = secret("jwt", "JWT validation settings of the API (OIDC issuer, audience, JWKS URL, algorithms)")
        if args.jwt is not None:
            jwt = args.jwt
            settings = pulumi.Output.all(jwt.issuer_url, jwt.audience, jwt.jwks_url).apply(
                lambda v: json.dumps(
                    {
                        "issuer_url": v[0],
                        "audience": v[1],
                        "jwks_url": v[2],
                        "algorithms": list(jwt.algorithms),
                        "provider": jwt.provider,
                    },
                    sort_keys=True,
                )
            )
            version("jwt", self.jwt, settings)

        self.sentry_dsn = None
        if args.sentry_dsn is not None:
            self.sentry_dsn = secret("sentry-dsn", "Sentry DSN of the api and worker (error tracking)")
            version("sentry-dsn", self.sentry_dsn, args.sentry_dsn)

        secrets = {
            "qdrant-api-key": self.qdrant_api_key,
            "cache-auth": self.cache_auth,
            "jwt": self.jwt,
        }
        if self.llm_api_key is not None:
            secrets["llm-api-key"] = self.llm_api_key
        if self.sentry_dsn is not None:
            secrets["sentry-dsn"] = self.sentry_dsn
        self.arns = [s.arn for s in secrets.values()]
        self.names = {k: s.name for k, s in secrets.items()}
        self.register_outputs({"arns": self.arns, "names": self.names})
