"""The shared local parts start, behave like the real services and enforce what the app relies on."""

from __future__ import annotations

import io

import httpx
import jwt
import pytest
import redis
from minio.error import S3Error


def test_redis_is_real(clean_redis: str) -> None:
    client = redis.Redis.from_url(clean_redis)
    client.set("k", "v", ex=10)
    assert client.get("k") == b"v"
    ttl = client.ttl("k")
    assert isinstance(ttl, int) and 0 < ttl <= 10


def test_seaweed_enforces_signatures(seaweed_s3, s3_buckets) -> None:
    seaweed_s3.client().put_object(s3_buckets.pages, "a/b.txt", io.BytesIO(b"hi"), 2)
    assert seaweed_s3.object_names(s3_buckets.pages) == ["a/b.txt"]
    assert seaweed_s3.object_names(s3_buckets.audit) == []
    from minio import Minio

    forged = Minio(
        seaweed_s3.endpoint, access_key=seaweed_s3.access_key, secret_key="wrong", secure=False, region="us-east-1"
    )
    with pytest.raises(S3Error) as err:
        list(forged.list_objects(s3_buckets.pages))
    assert err.value.code == "SignatureDoesNotMatch"
    anonymous = httpx.get(f"{seaweed_s3.url}/{s3_buckets.pages}/a/b.txt")
    assert anonymous.status_code == 403


def test_jwks_issuer_serves_keys_that_verify_its_tokens(issuer) -> None:
    jwks = httpx.get(issuer.jwks_url).json()
    assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in issuer.keys}
    for key in issuer.keys:
        token = issuer.mint("alice", ["admin"], key=key)
        jwk = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == key.kid))
        claims = jwt.decode(token, jwk, algorithms=[key.alg], audience=issuer.audience, issuer=issuer.issuer)
        assert claims["sub"] == "alice" and claims["roles"] == ["admin"]
    assert "private" not in str(jwks).lower() and all("d" not in k for k in jwks["keys"])


def test_openai_stub_checks_key_and_reports_usage(openai_stub) -> None:
    from openai import AuthenticationError, OpenAI

    client = OpenAI(api_key=openai_stub.api_key, base_url=openai_stub.base_url, max_retries=0)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "one two three"}])
    assert (reply.choices[0].message.content or "").startswith("stub answer")
    assert reply.usage is not None and reply.usage.total_tokens > openai_stub.completion_tokens
    assert client.moderations.create(input="FLAGME now").results[0].flagged
    with pytest.raises(AuthenticationError):
        OpenAI(api_key="sk-wrong", base_url=openai_stub.base_url, max_retries=0).moderations.create(input="x")
