"""Amazon Cognito access tokens (AUTH_PROVIDER=cognito): matched on `client_id` + `token_use`, for that issuer only.

Cognito access tokens carry the app client id in `client_id` and no `aud`; ID tokens carry it in `aud` with
`token_use: id`. The API accepts the access token of its own app client and nothing else, while every other issuer
keeps the strict `aud` check. Real RSA keys, a real JWKS served over HTTP, the whole app in front (401s are what a
client sees).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.core.settings import SettingsError

POOL_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E"
CLIENT_ID = "4f1n7o3u2p8t6r5e9a0c1l2i3e"


def _cognito_access(issuer: Any, **claims: Any) -> str:
    """A token shaped as Cognito issues access tokens: iss = the pool, client_id + token_use, no aud."""
    base = {"iss": POOL_ISSUER, "aud": None, "client_id": CLIENT_ID, "token_use": "access", "scope": "openid"}
    return str(issuer.mint("cognito-user", **{**base, **claims}))


async def _status(api: Any, token: str) -> int:
    response = await api.client.get("/jobs/nope", headers={"Authorization": f"Bearer {token}"})
    return int(response.status_code)


@pytest.fixture
def cognito_settings(settings_factory: Callable[..., Any], issuer: Any) -> Any:
    # The JWKS still comes from the local issuer (real keys over HTTP); only the pool's issuer name is Cognito's.
    return settings_factory(auth_provider="cognito", auth_issuer_url=POOL_ISSUER, auth_audience=CLIENT_ID)


async def test_cognito_access_token_of_our_client_passes(api_factory, cognito_settings, issuer) -> None:
    async with api_factory(cognito_settings) as api:
        assert await _status(api, _cognito_access(issuer)) == 404  # authenticated; the job does not exist
        assert await _status(api, _cognito_access(issuer, key=issuer.keys[1])) == 404  # ES256 key too


async def test_cognito_tokens_that_are_not_our_access_token_are_401(api_factory, cognito_settings, issuer) -> None:
    forged = {
        "other app client": _cognito_access(issuer, client_id="another-client"),
        "no client_id": _cognito_access(issuer, client_id=None),
        # An ID token of the same pool and client: aud = client id, token_use id.
        "ID token": _cognito_access(issuer, token_use="id", client_id=None, aud=CLIENT_ID),
        "ID token that also names client_id": _cognito_access(issuer, token_use="id", aud=CLIENT_ID),
        "no token_use": _cognito_access(issuer, token_use=None),
        # Right client_id but an aud as well: not what Cognito issues as an access token.
        "access token with aud": _cognito_access(issuer, aud=CLIENT_ID),
        "another pool": _cognito_access(issuer, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"),
    }
    async with api_factory(cognito_settings) as api:
        for name, token in forged.items():
            assert await _status(api, token) == 401, name


async def test_other_issuers_keep_the_strict_aud_check(api, issuer) -> None:
    # AUTH_PROVIDER=oidc (the default): a Cognito-shaped access token of the configured issuer, without `aud`,
    # is refused even though its client_id equals the configured audience.
    token = str(issuer.mint("someone", aud=None, client_id=issuer.audience, token_use="access"))
    assert await _status(api, token) == 401
    assert await _status(api, str(issuer.mint("someone"))) == 404


def test_cognito_mode_needs_a_cognito_issuer(settings_factory) -> None:
    # client_id matching is never switched on for an arbitrary issuer.
    for bad in ("https://login.example.com/", "https://cognito-idp.us-east-1.amazonaws.com.evil.example/us-east-1_A"):
        with pytest.raises((SettingsError, ValueError), match="AUTH_PROVIDER='cognito'"):
            settings_factory(auth_provider="cognito", auth_issuer_url=bad)
