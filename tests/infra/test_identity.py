"""Identity: every stack has a working OIDC issuer, its own Cognito user pool unless an external IdP is configured.

Guards the first-`up` failure of issue 11: with no issuer the `jwt` secret had no version, the api-auth
ExternalSecret never synced and the api pods never started. Now the pool's issuer, JWKS URL and app client id are
wired into that secret (provider "cognito", so the api matches access tokens on `client_id`), with the secure
settings hard-coded in infra/identity.py and the per-tier ones from stacks/config/tiers.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.identity import PASSWORD_MIN_LENGTH, Identity, IdentityArgs, issuer_url, jwks_url
from stacks.config import ConfigError, StackConfig
from stacks.engine.offline import Record, run_stack

STACKS = ("dev", "staging", "prod")
POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
DOMAIN = "aws:cognito/userPoolDomain:UserPoolDomain"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
EXTERNAL = {
    "issuerUrl": "https://login.example.com/",
    "audience": "visionrag-api",
    "jwksUrl": "https://login.example.com/jwks",
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_an_issuer_behind_the_jwt_secret(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (pool,) = record.of_type(POOL)
    (client,) = record.of_type(CLIENT)
    (domain,) = record.of_type(DOMAIN)
    (component,) = record.of_type("visionrag:infra:Identity")
    assert {pool.parent, client.parent, domain.parent} == {component.urn}
    # The jwt secret has a value, built from the pool (so the api-auth ExternalSecret can sync).
    version = record.one(VERSION, "secrets-jwt-version")
    assert version.inputs["secretString"] == "[secret]"
    assert pool.urn in version.dependencies and client.urn in version.dependencies
    pool_id, client_id = pool.outputs["id"], client.outputs["id"]
    assert record.outputs["identity"] == {
        "userPoolId": pool_id,
        "clientId": client_id,
        "issuerUrl": f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
        "hostedUiDomain": f"visionrag-{stack}-123456789012.auth.us-east-1.amazoncognito.com",
    }
    assert domain.inputs["domain"] == f"visionrag-{stack}-123456789012"


@pytest.mark.parametrize("stack", STACKS)
def test_pool_and_client_settings(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (pool,) = record.of_type(POOL)
    (client,) = record.of_type(CLIENT)
    p = pool.inputs
    assert p["passwordPolicy"]["minimumLength"] == PASSWORD_MIN_LENGTH
    assert all(
        p["passwordPolicy"][k] for k in ("requireLowercase", "requireUppercase", "requireNumbers", "requireSymbols")
    )
    assert p["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    assert p["softwareTokenMfaConfiguration"] == {"enabled": True}
    tier = {
        "dev": ("OPTIONAL", "INACTIVE", "OFF", "ESSENTIALS"),
        "staging": ("ON", "ACTIVE", "AUDIT", "PLUS"),
        "prod": ("ON", "ACTIVE", "ENFORCED", "PLUS"),
    }[stack]
    got = (
        p["mfaConfiguration"],
        p["deletionProtection"],
        p["userPoolAddOns"]["advancedSecurityMode"],
        p["userPoolTier"],
    )
    assert got == tier
    c = client.inputs
    origin = "https://" + {"dev": "dev.", "staging": "staging.", "prod": ""}[stack] + "visionrag.example.com"
    assert c["generateSecret"] is True and c["allowedOauthFlowsUserPoolClient"] is True
    assert c["allowedOauthFlows"] == ["code"]
    assert c["allowedOauthScopes"] == ["openid", "email", "profile"]
    assert c["callbackUrls"] == [f"{origin}/api/auth/callback/cognito"]
    assert origin in c["logoutUrls"]
    assert c["preventUserExistenceErrors"] == "ENABLED" and c["enableTokenRevocation"] is True
    assert c["tokenValidityUnits"] == {"accessToken": "minutes", "idToken": "minutes", "refreshToken": "days"}
    assert c["explicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def test_the_api_learns_the_provider_from_the_jwt_secret(records: dict[str, Record]) -> None:
    (auth,) = [
        r
        for r in records["prod"].of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
        if r.inputs["metadata"]["name"] == "api-auth"
    ]
    assert auth.inputs["spec"]["target"]["template"]["data"]["auth_provider"] == "{{ .provider }}"


def test_an_external_idp_replaces_the_pool() -> None:
    # The frontend signs in with the pool's app client, so an external IdP comes without it (stacks/config).
    record = run_stack("staging", overrides={"visionrag:workloads": {"auth": EXTERNAL, "frontend": None}})
    assert not record.of_type(POOL) and not record.of_type(CLIENT)
    assert "identity" not in record.outputs
    assert record.one(VERSION, "secrets-jwt-version").inputs["secretString"] == "[secret]"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"visionrag:identity": {"mfa": "optional"}}, "identity.mfa"),
        ({"visionrag:identity": {"deletionProtection": False}}, "identity.deletionProtection"),
        ({"visionrag:identity": {"threatProtection": "block"}}, "identity.threatProtection"),
        ({"visionrag:identity": {"mfa": "off"}}, "identity.mfa"),
        ({"visionrag:namePrefix": "awsrag"}, "namePrefix"),
    ],
)
def test_weaker_identity_outside_dev_is_a_config_error(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        run_stack("prod", overrides=overrides)
    assert key in dict(exc.value.problems)


def test_component_refuses_bad_args_naming_the_field() -> None:
    base = {"name_prefix": "visionrag-dev", "region": "us-east-1", "app_origin": "https://app.example.com"}
    cases = {
        "domain_prefix": {"domain_prefix": "my-cognito-login"},  # reserved word
        "mfa": {"domain_prefix": "ok-1", "mfa": "OFF"},
        "threat_protection": {"domain_prefix": "ok-1", "threat_protection": "BLOCK"},
        "app_origin": {"domain_prefix": "ok-1", "app_origin": "http://app.example.com/"},
    }
    for field, changes in cases.items():

        def program(cfg: StackConfig, changes: dict[str, Any] = changes) -> None:
            Identity("identity", IdentityArgs(**{**base, **changes}))

        with pytest.raises(ValueError, match=rf"^{field}: "):
            run_stack("dev", program=program)


def test_issuer_and_jwks_follow_cognito_s_format() -> None:
    issuer = issuer_url("eu-west-1", "eu-west-1_AbC123")
    assert issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert jwks_url(issuer) == f"{issuer}/.well-known/jwks.json"
