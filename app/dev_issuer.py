"""A DEVELOPMENT-ONLY OpenID Connect provider on loopback, for `make local` and the frontend's e2e tests.

Production signs users in through Cognito or an external IdP; locally there is neither, yet the API keeps its
real JWT verification and the frontend its real Auth.js code flow. So this serves what both need, and no more:
discovery, JWKS, an authorization endpoint with a one-field sign-in form (any user name, no password: it binds to
127.0.0.1 only), the token endpoint (authorization code with PKCE and a client-secret check, refresh tokens) and
userinfo. Access tokens carry the `iss`/`aud` the API is configured with (app/local.py), ID tokens the client id.
It refuses to bind anywhere but loopback and to redirect anywhere but a loopback URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEV_CLIENT_ID = "visionrag-web"
# How long an authorization code may wait for its exchange (RFC 6749 4.1.2 recommends at most 10 minutes).
CODE_TTL_S = 120


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64int(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and (parts.hostname or "") in LOOPBACK_HOSTS


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    sub: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    expires_at: float


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class DevIssuer:
    """RSA-signed tokens for a dev user, served over a real OIDC code flow on 127.0.0.1."""

    def __init__(
        self,
        audience: str,
        *,
        client_id: str = DEV_CLIENT_ID,
        client_secret: str | None = None,
        roles: tuple[str, ...] = ("admin",),
        access_ttl_s: int = 3600,
        host: str = "127.0.0.1",
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"DevIssuer host {host!r}: development only, must be one of {sorted(LOOPBACK_HOSTS)}")
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.audience = audience
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.roles = roles
        self.access_ttl_s = access_ttl_s
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": _b64int(numbers.n),
            "e": _b64int(numbers.e),
        }
        self._jwks = {"keys": [jwk]}
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}authorize",
            "token_endpoint": f"{base}token",
            "userinfo_endpoint": f"{base}userinfo",
            "jwks_uri": f"{base}.well-known/jwks.json",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "name", "roles"],
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        import jwt

        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def token(self, sub: str = "local-dev", hours: int = 12) -> str:
        """An API access token for `sub` (what `make local` prints for curl)."""
        return self._access_token(sub, "openid", hours * 3600)

    def _access_token(self, sub: str, scope: str, ttl_s: int) -> str:
        now = int(time.time())
        return self._sign(
            {
                "iss": self.issuer,
                "aud": self.audience,
                "sub": sub,
                "iat": now,
                "nbf": now,
                "exp": now + ttl_s,
                "client_id": self.client_id,
                "scope": scope,
                "roles": list(self.roles),
            }
        )

    @staticmethod
    def _profile(sub: str) -> dict[str, str]:
        return {"sub": sub, "name": sub, "email": f"{sub}@localhost"}

    # --- the authorization endpoint ---------------------------------------------------------------------------
    def check_authorize(self, params: dict[str, str]) -> None:
        if params.get("client_id") != self.client_id:
            raise OAuthError("unauthorized_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not is_loopback_url(redirect_uri):
            raise OAuthError("invalid_request", "redirect_uri must be a loopback http(s) URL (development issuer)")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        if "openid" not in params.get("scope", "").split():
            raise OAuthError("invalid_scope", "scope must include openid")
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")

    def approve(self, params: dict[str, str], sub: str) -> str:
        """The redirect (with a one-time code) for a signed-in `sub`."""
        self.check_authorize(params)
        if not sub or len(sub) > 64 or not all(ch.isalnum() or ch in "-_.@" for ch in sub):
            raise OAuthError("invalid_request", "user name: 1-64 letters, digits or -_.@")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=params["redirect_uri"],
                sub=sub,
                scope=params.get("scope", "openid"),
                nonce=params.get("nonce"),
                code_challenge=params.get("code_challenge"),
                expires_at=time.monotonic() + CODE_TTL_S,
            )
        query = {"code": code, "iss": self.issuer}
        if params.get("state"):
            query["state"] = params["state"]
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return f"{params['redirect_uri']}{separator}{urlencode(query)}"

    # --- the token endpoint -----------------------------------------------------------------------------------
    def _authenticate_client(self, form: dict[str, str], authorization: str | None) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            from urllib.parse import unquote_plus

            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if client_id != self.client_id or not hmac.compare_digest((secret or "").encode(), self.client_secret.encode()):
            raise OAuthError("invalid_client", "client authentication failed", 401)

    def exchange(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        self._authenticate_client(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self._lock:
                grant = self._codes.pop(form.get("code", ""), None)  # one use, even when it then fails
            if grant is None or grant.expires_at < time.monotonic():
                raise OAuthError("invalid_grant", "unknown, used or expired code")
            if form.get("redirect_uri") != grant.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
            if grant.code_challenge:
                verifier = form.get("code_verifier", "")
                if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge:
                    raise OAuthError("invalid_grant", "PKCE code_verifier does not match")
        elif grant_type == "refresh_token":
            with self._lock:
                grant = self._refresh.pop(form.get("refresh_token", ""), None)  # rotated on every use
            if grant is None:
                raise OAuthError("invalid_grant", "unknown or used refresh token")
        else:
            raise OAuthError("unsupported_grant_type", "authorization_code or refresh_token")
        return self._issue(grant)

    def _issue(self, grant: _Grant) -> dict[str, Any]:
        now = int(time.time())
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = grant
        id_claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + self.access_ttl_s,
            **self._profile(grant.sub),
        }
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        return {
            "access_token": self._access_token(grant.sub, grant.scope, self.access_ttl_s),
            "id_token": self._sign(id_claims),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_s,
            "scope": grant.scope,
        }

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        import jwt

        if not authorization or not authorization.startswith("Bearer "):
            raise OAuthError("invalid_token", "bearer token required", 401)
        try:
            claims = jwt.decode(
                authorization[7:],
                self.key.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_token", "invalid access token", 401) from None
        return {**self._profile(claims["sub"]), "roles": claims.get("roles", [])}


def login_page(params: dict[str, str]) -> bytes:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in sorted(params.items())
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
.warn{{background:#fff3cd;border:1px solid #e0c36a;padding:.75rem;border-radius:.4rem}}
input,button{{font-size:1rem;padding:.5rem;margin:.25rem 0}}</style></head><body>
<h1>Development issuer</h1>
<p class="warn">Local development only: any user name signs in, without a password.</p>
<form method="post" action="/authorize">{hidden}
<label for="username">User name</label><br>
<input id="username" name="username" value="local-dev" autocomplete="username" required><br>
<button type="submit">Sign in</button></form></body></html>""".encode()


def _handler_for(issuer: DevIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: dict[str, Any]) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def _error(self, exc: OAuthError) -> None:
            extra = {"WWW-Authenticate": "Basic"} if exc.error == "invalid_client" else None
            body = json.dumps({"error": exc.error, "error_description": exc.description}).encode()
            self._send(exc.status, body, "application/json", extra)

        def _path(self) -> str:
            return "/" + urlsplit(self.path).path.lstrip("/")

        def _query(self) -> dict[str, str]:
            return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 16_384:
                raise OAuthError("invalid_request", "request body too large", 413)
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self) -> None:
            path = self._path()
            try:
                if path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery())
                elif path == "/.well-known/jwks.json":
                    self._json(200, issuer._jwks)
                elif path == "/authorize":
                    params = self._query()
                    issuer.check_authorize(params)
                    self._send(200, login_page(params), "text/html; charset=utf-8")
                elif path == "/userinfo":
                    self._json(200, issuer.userinfo(self.headers.get("Authorization")))
                else:
                    self._json(404, {"error": "not_found"})
            except OAuthError as exc:
                self._error(exc)

        def do_POST(self) -> None:
            path = self._path()
            try:
                if path == "/authorize":
                    form = self._form()
                    sub = form.pop("username", "")
                    self._send(302, b"", "text/plain", {"Location": issuer.approve(form, sub)})
                elif path == "/token":
                    self._json(200, issuer.exchange(self._form(), self.headers.get("Authorization")))
                else:
                    self._json(404, {"error": "not_found"})
            except OAuthError as exc:
                self._error(exc)

        def log_message(self, *args: Any) -> None:
            return

    return Handler
