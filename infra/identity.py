"""Identity: the stack's own OIDC issuer, an Amazon Cognito user pool with one app client and a hosted domain.

Every stack needs an issuer (the api refuses every request without one, and the `jwt` secret has no value to sync
without one). When no external identity provider is configured (`workloads.auth`), this component is it:

- a user pool with no self sign-up (an administrator invites users), email as the username, a 14-character
  password policy with all four character classes, TOTP MFA (`OPTIONAL` or `ON`, per tier), account recovery by
  verified email only, user-existence errors suppressed, and deletion protection and threat protection per tier;
- one confidential app client for the frontend (next-auth, server side): authorization-code flow only, a client
  secret, scopes `openid email profile`, callback `https://<app host>/api/auth/callback/cognito`, token revocation,
  1-hour access/ID tokens and 30-day refresh tokens;
- a Cognito-prefix hosted domain `<prefix>-<account id>.auth.<region>.amazoncognito.com` (the account id keeps the
  global prefix unique per account, like the bucket names).

The api validates the pool's access tokens: issuer `https://cognito-idp.<region>.amazonaws.com/<pool id>`, JWKS
`<issuer>/.well-known/jwks.json`, audience = the app client id, matched against the token's `client_id` (Cognito
access tokens carry no `aud`; app/api/auth.py, AUTH_PROVIDER=cognito). Sources: docs/platform.md "Identity".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.naming import check_name_prefix

MFA_MODES = ("OPTIONAL", "ON")  # never "OFF": every user can at least enrol a TOTP authenticator
THREAT_PROTECTION_MODES = ("OFF", "AUDIT", "ENFORCED")  # AUDIT / ENFORCED need the Plus feature plan
PASSWORD_MIN_LENGTH = 14
TEMPORARY_PASSWORD_DAYS = 3  # an invitation's password expires quickly
PASSWORD_HISTORY = 12  # the last 12 passwords may not be reused (Essentials and Plus plans)
ACCESS_TOKEN_MINUTES = 60
ID_TOKEN_MINUTES = 60
REFRESH_TOKEN_DAYS = 30
OAUTH_SCOPES = ("openid", "email", "profile")
CALLBACK_PATH = "/api/auth/callback/cognito"  # next-auth's callback for a provider with id "cognito"
# A Cognito prefix domain: lower-case letters, digits and hyphens, 1-63 characters, and it may not contain the
# reserved words "aws", "amazon" or "cognito".
_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_RESERVED_WORDS = ("aws", "amazon", "cognito")


def issuer_url(region: str, pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


def jwks_url(issuer: str) -> str:
    return f"{issuer}/.well-known/jwks.json"


def check_domain_prefix(value: str) -> None:
    if not _DOMAIN_PREFIX.match(value) or any(word in value for word in DOMAIN_RESERVED_WORDS):
        raise ValueError(
            f"domain_prefix: {value!r} must be 1-63 lower-case letters, digits or hyphens, not start or end with a "
            f"hyphen, and not contain {', '.join(DOMAIN_RESERVED_WORDS)}"
        )


@dataclass(frozen=True, kw_only=True)
class IdentityArgs:
    name_prefix: str  # "<prefix>-<tier>": the pool is "<name_prefix>-users"
    region: str
    domain_prefix: str  # hosted domain "<domain_prefix>.auth.<region>.amazoncognito.com"
    app_origin: str  # https://<app host>: callback and sign-out URLs live under it
    mfa: str = "ON"  # one of MFA_MODES
    threat_protection: str = "ENFORCED"  # one of THREAT_PROTECTION_MODES
    deletion_protection: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: IdentityArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    check_domain_prefix(args.domain_prefix)
    if args.mfa not in MFA_MODES:
        raise ValueError(f"mfa: {args.mfa!r} not allowed; allowed: {', '.join(MFA_MODES)}")
    if args.threat_protection not in THREAT_PROTECTION_MODES:
        raise ValueError(
            f"threat_protection: {args.threat_protection!r} not allowed; allowed: {', '.join(THREAT_PROTECTION_MODES)}"
        )
    if not re.match(r"^https://[a-z0-9.-]+$", args.app_origin):
        raise ValueError(f"app_origin: {args.app_origin!r} must be https://<host> (no path, no trailing slash)")


class Identity(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool
    client: aws.cognito.UserPoolClient
    domain: aws.cognito.UserPoolDomain
    user_pool_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]
    issuer_url: pulumi.Output[str]
    jwks_url: pulumi.Output[str]
    hosted_ui_domain: str

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            name=f"{args.name_prefix}-users",
            # Threat protection (advanced security) exists only on the Plus plan; Essentials otherwise.
            user_pool_tier="PLUS" if args.threat_protection != "OFF" else "ESSENTIALS",
            user_pool_add_ons=aws.cognito.UserPoolUserPoolAddOnsArgs(advanced_security_mode=args.threat_protection),
            deletion_protection="ACTIVE" if args.deletion_protection else "INACTIVE",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            # Private documents: nobody signs themselves up; an administrator invites each user.
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(allow_admin_create_user_only=True),
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=TEMPORARY_PASSWORD_DAYS,
                password_history_size=PASSWORD_HISTORY,
            ),
            mfa_configuration=args.mfa,
            # TOTP only: SMS MFA needs an SNS role and spend limits, email MFA a SES identity.
            software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(enabled=True),
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(name="verified_email", priority=1)
                ]
            ),
            tags={**args.tags, "Name": f"{args.name_prefix}-users"},
            opts=child,
        )
        callback = f"{args.app_origin}{CALLBACK_PATH}"
        self.client = aws.cognito.UserPoolClient(
            f"{name}-web",
            name=f"{args.name_prefix}-web",
            user_pool_id=self.user_pool.id,
            # Confidential client: next-auth runs server side and keeps the secret there.
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],  # no implicit flow: tokens never travel in a URL fragment
            allowed_oauth_scopes=list(OAUTH_SCOPES),
            supported_identity_providers=["COGNITO"],
            callback_urls=[callback],
            default_redirect_uri=callback,
            logout_urls=[args.app_origin, f"{args.app_origin}/"],
            # The hosted pages offer the password sign-in the client allows: SRP (the password never leaves the
            # browser) and refresh; never USER_PASSWORD_AUTH (plain password to the API) or CUSTOM_AUTH.
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=ACCESS_TOKEN_MINUTES,
            id_token_validity=ID_TOKEN_MINUTES,
            refresh_token_validity=REFRESH_TOKEN_DAYS,
            # Units of the three validities above (ruff's S106 mistakes the unit names for passwords).
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                access_token="minutes",  # noqa: S106
                id_token="minutes",  # noqa: S106
                refresh_token="days",  # noqa: S106
            ),
            opts=child,
        )
        self.domain = aws.cognito.UserPoolDomain(
            f"{name}-domain",
            domain=args.domain_prefix,
            user_pool_id=self.user_pool.id,
            opts=child,
        )

        self.user_pool_id = self.user_pool.id
        self.client_id = self.client.id
        self.client_secret = pulumi.Output.secret(self.client.client_secret)
        self.issuer_url = self.user_pool.id.apply(lambda pool_id: issuer_url(args.region, pool_id))
        self.jwks_url = self.issuer_url.apply(jwks_url)
        self.hosted_ui_domain = f"{args.domain_prefix}.auth.{args.region}.amazoncognito.com"
        self.register_outputs(
            {
                "userPoolId": self.user_pool_id,
                "clientId": self.client_id,
                "issuerUrl": self.issuer_url,
                "jwksUrl": self.jwks_url,
                "hostedUiDomain": self.hosted_ui_domain,
            }
        )
