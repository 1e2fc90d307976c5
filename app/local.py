"""`python -m app.local` (what `make local` runs): the whole app on loopback with embedded defaults.

Starts redis-server and SeaweedFS (`weed mini`) on free 127.0.0.1 ports with data under `.local/`, the
embedder as its own process with EMBEDDER_MODEL (a real ColPali checkpoint directory) or, when unset, the tiny
random test model with a loud warning, a development OIDC issuer (JWKS on loopback) and the API together with
the indexing worker in one process (Qdrant local mode on disk allows a single process). Prints the URL and a
development admin token; Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.dev_servers import DevServerError, free_ports, start_redis, start_seaweedfs

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local"


def wait_for(check: Any, what: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {STATE}/logs")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout_s:.0f}s; see {STATE}/logs")
        time.sleep(0.2)


class DevIssuer:
    """An RSA key whose JWKS is served on loopback, so the API keeps real JWT verification locally."""

    def __init__(self, audience: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.audience = audience
        numbers = self.key.public_key().public_numbers()

        def b64(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

        body = json.dumps(
            {
                "keys": [
                    {
                        "kty": "RSA",
                        "kid": self.kid,
                        "alg": "RS256",
                        "use": "sig",
                        "n": b64(numbers.n),
                        "e": b64(numbers.e),
                    }
                ]
            }
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def token(self, sub: str = "local-dev", hours: int = 12) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + hours * 3600,
            "roles": ["admin"],
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


def main() -> int:
    STATE.mkdir(exist_ok=True)
    logs = STATE / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed when the process ends
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=STATE, env=env)  # noqa: S603
        procs.append(proc)
        return proc

    try:
        redis = start_redis(STATE / "redis", persist=True, log_path=logs / "redis.log", timeout_s=120)
        procs.append(redis.proc)
        redis_port = redis.port

        access, secret = "local" + secrets.token_hex(6), secrets.token_hex(20)
        s3 = start_seaweedfs(
            STATE,
            access_key=access,
            secret_key=secret,
            identity="local",
            data_dir=STATE / "weed",
            log_path=logs / "seaweedfs.log",
            volume_size_limit_mb=256,
            timeout_s=120,
        )
        procs.append(s3.proc)
        s3_endpoint = s3.endpoint
        for bucket in ("visionrag-pages", "visionrag-audit"):
            s3.make_bucket(bucket)
        # Drawn once redis and weed hold theirs, so none can be handed out twice.
        api_port, embedder_port = free_ports(2)

        model = os.environ.get("EMBEDDER_MODEL", "")
        if not model:
            from app.embedder.tiny_model import ensure_tiny_colpali

            model = str(ensure_tiny_colpali(STATE / "tiny-colpali"))
            print("\n" + "!" * 100)
            print("!! EMBEDDER_MODEL is not set: using the TINY RANDOM test model. Search results are MEANINGLESS.")
            print("!! Point EMBEDDER_MODEL at a ColPali checkpoint directory (vidore/colpali-v1.3-hf) for real use.")
            print("!" * 100 + "\n")
        embedder_env = {
            **os.environ,
            "EMBEDDER_MODEL": model,
            "EMBEDDER_HOST": "127.0.0.1",
            "EMBEDDER_PORT": str(embedder_port),
            "HF_HUB_OFFLINE": "1",
        }
        embedder = spawn([sys.executable, "-m", "app.embedder"], "embedder", embedder_env)
        import httpx

        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{embedder_port}/health", timeout=1).status_code == 200,
            "embedder",
            embedder,
            timeout_s=600,
        )

        issuer = DevIssuer("visionrag-local")
        env = {
            "ENVIRONMENT": "dev",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "S3_ENDPOINT": s3_endpoint,
            "S3_ACCESS_KEY": access,
            "S3_SECRET_KEY": secret,
            "S3_SECURE": "false",
            "S3_SSE": "s3",
            "S3_BUCKET_PAGES": "visionrag-pages",
            "S3_BUCKET_AUDIT": "visionrag-audit",
            "QDRANT_URL": str(STATE / "qdrant"),
            "EMBEDDER_URL": f"http://127.0.0.1:{embedder_port}",
            "AUTH_ISSUER_URL": issuer.issuer,
            "AUTH_AUDIENCE": issuer.audience,
            "AUTH_JWKS_URL": f"{issuer.issuer}.well-known/jwks.json",
            "METRICS_ENABLED": "false",
            "ALLOWED_ORIGINS": "http://localhost:3000",
            "API_DOCS_ENABLED": "true",
            "LOG_JSON": "false",
            "WORKER_METRICS_PORT": "0",
        }
        os.environ.update(env)
        print(f"API        http://127.0.0.1:{api_port}   (docs: /docs)")
        print(f"S3         http://{s3_endpoint}   access key {access}")
        print(f"embedder   http://127.0.0.1:{embedder_port}   model {model}")
        print(f"dev token  {issuer.token()}")
        print("Ctrl-C stops everything.\n", flush=True)
        asyncio.run(serve(api_port))
    except DevServerError as exc:
        raise SystemExit(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                proc.kill()
        print("stopped.")
    return 0


async def serve(port: int) -> None:
    import uvicorn
    from arq.worker import Worker

    from app.api.main import create_app
    from app.core.settings import get_settings
    from app.worker.settings import WorkerSettings
    from app.worker.tasks import build_indexer, worker_options

    app = create_app(get_settings())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    api = asyncio.create_task(server.serve())
    while not server.started:
        if api.done():
            api.result()
            return
        await asyncio.sleep(0.1)
    # One process owns the on-disk local Qdrant: the worker reuses the API's VectorIndex.
    settings = WorkerSettings()
    indexer = build_indexer(settings, vectors=app.state.services.vectors, jobs=None)
    worker = Worker(**worker_options(settings, handle_signals=False, ctx={"settings": settings, "indexer": indexer}))
    work = asyncio.create_task(worker.async_run())
    try:
        await api
    except asyncio.CancelledError:
        # asyncio.run cancels the main task on Ctrl-C; let uvicorn finish its own shutdown.
        server.should_exit = True
    finally:
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        with contextlib.suppress(Exception):
            await worker.close()


if __name__ == "__main__":
    raise SystemExit(main())
