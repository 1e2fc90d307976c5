"""The development OIDC provider (app/dev_issuer.py): a full code flow round-trip whose access token the API's own
verifier accepts, and the refusals that keep it a loopback-only, one-client, one-use-code provider."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from app.dev_issuer import DevIssuer

REDIRECT = "http://127.0.0.1:3000/api/auth/callback/cognito"


@pytest.fixture
def issuer() -> Iterator[DevIssuer]:
    server = DevIssuer("visionrag-local", roles=("admin",))
    yield server
    server.close()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(client: httpx.Client, issuer: DevIssuer, challenge: str, **extra: str) -> str:
    """Discovery, the sign-in form, and its submission; returns the code from the redirect."""
    meta = client.get(f"{issuer.issuer}.well-known/openid-configuration").json()
    params = {
        "response_type": "code",
        "client_id": issuer.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    form = client.get(meta["authorization_endpoint"], params=params)
    assert form.status_code == 200
    assert 'name="username"' in form.text
    assert "development only" in form.text.lower()
    done = client.post(meta["authorization_endpoint"], data={**params, "username": "alice"})
    assert done.status_code == 302
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    assert query["iss"] == [issuer.issuer]
    return query["code"][0]


def _verify_with_api(issuer: DevIssuer, token: str) -> object:
    from app.api.auth import JwksCache, TokenVerifier
    from app.api.settings import Settings

    settings = Settings(
        auth_issuer_url=issuer.issuer,
        auth_audience=issuer.audience,
        auth_jwks_url=f"{issuer.issuer}.well-known/jwks.json",
    )

    async def run() -> object:
        async with httpx.AsyncClient() as client:
            return await TokenVerifier(settings, JwksCache(settings.auth_jwks_url, client)).verify(token)

    return asyncio.run(run())


def test_code_flow_round_trip_issues_tokens_the_api_accepts(issuer: DevIssuer) -> None:
    verifier, challenge = _pkce()
    with httpx.Client(timeout=5) as client:
        code = _authorize(client, issuer, challenge)
        tokens = client.post(
            f"{issuer.issuer}token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            auth=(issuer.client_id, issuer.client_secret),
        )
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        id_claims = jwt.decode(
            body["id_token"], issuer.key.public_key(), algorithms=["RS256"], audience=issuer.client_id
        )
        assert (id_claims["sub"], id_claims["nonce"], id_claims["iss"]) == ("alice", "n0nce", issuer.issuer)

        principal = _verify_with_api(issuer, body["access_token"])
        assert principal.sub == "alice"  # type: ignore[attr-defined]
        assert principal.has_role("admin")  # type: ignore[attr-defined]

        info = client.get(f"{issuer.issuer}userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert info.json()["email"] == "alice@localhost"

        # The refresh token works once (rotation), with the secret in the body this time.
        form = {"client_id": issuer.client_id, "client_secret": issuer.client_secret}
        refreshed = client.post(
            f"{issuer.issuer}token",
            data={**form, "grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        )
        assert refreshed.status_code == 200
        assert _verify_with_api(issuer, refreshed.json()["access_token"]).sub == "alice"  # type: ignore[attr-defined]
        again = client.post(
            f"{issuer.issuer}token",
            data={**form, "grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        )
        assert again.json()["error"] == "invalid_grant"


def test_code_is_single_use_and_bound_to_secret_pkce_and_redirect(issuer: DevIssuer) -> None:
    verifier, challenge = _pkce()
    with httpx.Client(timeout=5) as client:
        url = f"{issuer.issuer}token"
        base = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier}
        auth = (issuer.client_id, issuer.client_secret)

        code = _authorize(client, issuer, challenge)
        wrong_secret = client.post(url, data={**base, "code": code}, auth=(issuer.client_id, "nope"))
        assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")

        code = _authorize(client, issuer, challenge)
        bad_pkce = client.post(url, data={**base, "code": code, "code_verifier": "x" * 43}, auth=auth)
        assert bad_pkce.json()["error"] == "invalid_grant"
        # A failed exchange burns the code too.
        assert client.post(url, data={**base, "code": code}, auth=auth).json()["error"] == "invalid_grant"

        code = _authorize(client, issuer, challenge)
        other_redirect = {**base, "code": code, "redirect_uri": "http://127.0.0.1:3000/elsewhere"}
        assert client.post(url, data=other_redirect, auth=auth).json()["error"] == "invalid_grant"

        code = _authorize(client, issuer, challenge)
        assert client.post(url, data={**base, "code": code}, auth=auth).status_code == 200
        assert client.post(url, data={**base, "code": code}, auth=auth).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("param", "value", "error"),
    [
        ("redirect_uri", "https://evil.example/cb", "invalid_request"),
        ("client_id", "someone-else", "unauthorized_client"),
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "email", "invalid_scope"),
    ],
)
def test_authorize_refuses_non_loopback_redirects_and_unknown_clients(
    issuer: DevIssuer, param: str, value: str, error: str
) -> None:
    params = {"response_type": "code", "client_id": issuer.client_id, "redirect_uri": REDIRECT, "scope": "openid"}
    params[param] = value
    with httpx.Client(timeout=5) as client:
        response = client.get(f"{issuer.issuer}authorize", params=params)
        assert (response.status_code, response.json()["error"]) == (400, error)
        submitted = client.post(f"{issuer.issuer}authorize", data={**params, "username": "alice"})
        assert submitted.status_code == 400
        assert "location" not in submitted.headers


def test_userinfo_needs_a_valid_access_token_and_the_issuer_binds_loopback_only(issuer: DevIssuer) -> None:
    forged = jwt.encode({"sub": "x", "iss": issuer.issuer, "aud": issuer.audience}, "k" * 32, algorithm="HS256")
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{issuer.issuer}userinfo").status_code == 401
        assert client.get(f"{issuer.issuer}userinfo", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    with pytest.raises(ValueError, match="development only"):
        DevIssuer("visionrag-local", host="0.0.0.0")
