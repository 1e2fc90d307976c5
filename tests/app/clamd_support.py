"""A real clamd (Debian's clamav-daemon, `make clamav`) for the upload tests, on 127.0.0.1:<free port>.

It runs the very clamd.conf the cluster deploys (infra/workloads/clamav.py `clamd_conf`: the same stream and
scan limits), pointed at a loopback address and temp dirs. Signature downloads are impossible here, so the
database is one body signature of our own: the EICAR test string anywhere in a file (an `.ndb` rule, so an
EICAR string inside an otherwise valid PDF is found, as a real signature set finds it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from app.dev_servers import free_port
from infra.workloads.clamav import clamd_conf

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Visionrag.Test.EICAR"
INSTALL_HINT = "clamd not found: run `make clamav` (apt-get install clamav-daemon)"


class ClamdMissing(RuntimeError):
    pass


def find_clamd() -> str:
    found = shutil.which("clamd") or next((p for p in ("/usr/sbin/clamd",) if Path(p).is_file()), None)
    if found is None:
        raise ClamdMissing(INSTALL_HINT)
    return found


def ping(port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).rstrip(b"\0") == b"PONG"
    except OSError:
        return False


@dataclass
class Clamd:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_clamd(workdir: Path, *, max_upload_mb: int, timeout_s: float = 60.0) -> Clamd:
    """Start clamd with the deployed config; raises ClamdMissing, or RuntimeError with its log if it never answers."""
    binary = find_clamd()
    database = workdir / "db"
    database.mkdir(parents=True, exist_ok=True)
    # Name:TargetType(0 = any file):Offset(* = anywhere):hex body.
    (database / "visionrag-test.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
    temp = workdir / "tmp"
    temp.mkdir(exist_ok=True)
    port = free_port()
    config = workdir / "clamd.conf"
    config.write_text(
        clamd_conf(
            max_upload_mb=max_upload_mb, port=port, database_dir=str(database), temp_dir=str(temp), tcp_addr="127.0.0.1"
        )
    )
    log = workdir / "clamd.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, f"--config-file={config}"], stdout=out, stderr=subprocess.STDOUT)
    server = Clamd(port=port, process=process, log=log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ping(port):
            return server
        if process.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"clamd did not answer PING on {port}:\n{log.read_text()[-2000:]}")
