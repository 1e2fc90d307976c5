"""S3_AUTH=iam: the api signs with the credentials of the pod's web identity (IRSA), never with static keys.

A local STS answers AssumeRoleWithWebIdentity with the SeaweedFS identity's keys, so the whole chain is real:
token file + role ARN -> STS exchange -> SigV4-signed requests that SeaweedFS verifies. (SeaweedFS resolves any
session token against its own STS, so the round trip runs without one; the presign test checks that a real
session token travels with the signature.)
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio.credentials import IamAwsProvider

from app.api.container import AppServices
from app.api.settings import Settings

ROLE_ARN = "arn:aws:iam::123456789012:role/visionrag-prod-api"
WEB_IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken"


@dataclass
class FakeSts:
    access_key: str
    secret_key: str
    session_token: str = SESSION_TOKEN
    port: int = 0
    calls: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _sts_handler(base: type) -> type:
    class _Sts(base):  # type: ignore[valid-type,misc]
        def do_POST(self) -> None:
            sts: FakeSts = self.server.owner  # type: ignore[attr-defined]
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            sts.calls.append(query)
            if (
                query.get("Action") != "AssumeRoleWithWebIdentity"
                or query.get("WebIdentityToken") != WEB_IDENTITY_TOKEN
            ):
                self.send_response(403)
                self.end_headers()
                return
            expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = (
                '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                "<AssumeRoleWithWebIdentityResult><Credentials>"
                f"<AccessKeyId>{sts.access_key}</AccessKeyId><SecretAccessKey>{sts.secret_key}</SecretAccessKey>"
                f"<SessionToken>{sts.session_token}</SessionToken><Expiration>{expires}</Expiration>"
                "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return _Sts


@pytest.fixture
def fake_sts(stub_http: Any, seaweed_s3: Any) -> Iterator[FakeSts]:
    sts = FakeSts(seaweed_s3.access_key, seaweed_s3.secret_key)
    server = stub_http.start(_sts_handler(stub_http.handler_base), sts)
    sts.port = server.port
    yield sts
    server.close()


@pytest.fixture
def irsa_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the EKS pod identity webhook injects into a pod whose ServiceAccount has a role annotation."""
    token = tmp_path / "eks.amazonaws.com" / "serviceaccount" / "token"
    token.parent.mkdir(parents=True)
    token.write_text(WEB_IDENTITY_TOKEN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(var, raising=False)


def test_static_mode_passes_the_keys_and_no_provider(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    assert settings.s3_auth == "static"
    args = settings.s3_credentials()
    assert set(args) == {"access_key", "secret_key"} and args["access_key"] == settings.s3_access_key.get_secret_value()


async def test_iam_mode_signs_with_the_web_identity_credentials(
    settings_factory: Callable[..., Settings], fake_sts: FakeSts, irsa_env: None, seaweed_s3: Any
) -> None:
    fake_sts.session_token = ""
    settings = settings_factory(s3_auth="iam", s3_access_key="", s3_secret_key="", s3_sts_endpoint=fake_sts.url)
    assert isinstance(settings.s3_credentials()["credentials"], IamAwsProvider)
    services = AppServices.build(settings)
    try:
        key = "uploads/doc-irsa/probe.txt"
        await services.storage.put_bytes(key, b"signed via IRSA", "text/plain")
        assert await services.storage.get_bytes(key) == b"signed via IRSA"
        url = services.storage.presign_get(key)
        assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["X-Amz-Credential"].startswith(
            seaweed_s3.access_key + "/"
        )
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == b"signed via IRSA"
    finally:
        await services.aclose()
    assert fake_sts.calls, "the STS exchange never happened"
    call = fake_sts.calls[0]
    assert call["RoleArn"] == ROLE_ARN and call["WebIdentityToken"] == WEB_IDENTITY_TOKEN


async def test_presigned_urls_carry_the_session_token_of_the_temporary_credentials(
    settings_factory: Callable[..., Settings], fake_sts: FakeSts, irsa_env: None
) -> None:
    settings = settings_factory(s3_auth="iam", s3_access_key="", s3_secret_key="", s3_sts_endpoint=fake_sts.url)
    services = AppServices.build(settings)
    try:
        url = services.storage.presign_get("pages/doc-irsa/00001.jpg")
    finally:
        await services.aclose()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["X-Amz-Security-Token"] == SESSION_TOKEN
    assert int(query["X-Amz-Expires"]) == settings.presign_ttl_s


async def test_iam_mode_without_a_reachable_identity_fails_instead_of_going_anonymous(
    settings_factory: Callable[..., Settings], fake_sts: FakeSts, irsa_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token")
    settings = settings_factory(s3_auth="iam", s3_access_key="", s3_secret_key="", s3_sts_endpoint=fake_sts.url)
    services = AppServices.build(settings)
    try:
        with pytest.raises(ValueError, match="error in reading file /nonexistent/token"):
            await services.storage.put_bytes("uploads/doc-irsa/x.txt", b"x", "text/plain")
        # It fails reading the identity, before any request: never an anonymous (unsigned) fallback.
        assert fake_sts.calls == []
    finally:
        await services.aclose()
