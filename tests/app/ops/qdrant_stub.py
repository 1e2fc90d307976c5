"""A Qdrant REST double for the snapshot endpoints (no Qdrant server can run here).

It answers with the real response shapes (the collection info is produced by qdrant-client's own local
mode), enforces the api-key header, and on recover it really downloads `location` (the presigned S3 URL)
and verifies the sha256 checksum, as Qdrant does. `snapshot_source` / `on_recover` (optional) let a test back the
snapshot bytes with a real collection (qdrant-client local mode): what is recovered is then really queryable.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


class QdrantStub:
    def __init__(
        self,
        *,
        api_key: str,
        collection_info: dict[str, Any],
        snapshot_bytes: int,
        snapshot_source: Callable[[str], bytes] | None = None,
        on_recover: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.snapshot_source = snapshot_source
        self.on_recover = on_recover
        self.collection_info = collection_info
        self.aliases: dict[str, str] = {"pages": "pages_v1"}
        self.collections = {"pages_v1"}
        self.snapshots: dict[str, bytes] = {}
        self.snapshot_bytes = snapshot_bytes
        self.restored: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps({"result": body, "status": "ok", "time": 0.001}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("api-key") != stub.api_key:
                    self._send(401, None, json.dumps({"status": {"error": "Must provide an API key"}}).encode())
                    return False
                return True

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                if parts == [""]:
                    data = json.dumps({"title": "qdrant - vector search engine", "version": "1.20.0"}).encode()
                    return self._send(200, None, raw=data)
                if parts == ["aliases"]:
                    aliases = [{"alias_name": a, "collection_name": c} for a, c in stub.aliases.items()]
                    return self._send(200, {"aliases": aliases})
                if len(parts) == 3 and parts[2] == "exists":
                    return self._send(200, {"exists": parts[1] in stub.collections})
                if len(parts) == 2 and parts[0] == "collections":
                    return self._send(200, stub.collection_info)
                if len(parts) == 4 and parts[2] == "snapshots":
                    return self._send(200, None, raw=stub.snapshots[parts[3]])
                return self._send(404, {"path": self.path, "method": self.command})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                if parts == ["collections", "aliases"]:
                    for op in self._body()["actions"]:
                        if "delete_alias" in op:
                            stub.aliases.pop(op["delete_alias"]["alias_name"], None)
                        if "create_alias" in op:
                            stub.aliases[op["create_alias"]["alias_name"]] = op["create_alias"]["collection_name"]
                    return self._send(200, True)
                if len(parts) == 3 and parts[2] == "snapshots":
                    source = stub.snapshot_source
                    data = source(parts[1]) if source else os.urandom(stub.snapshot_bytes)
                    name = f"{parts[1]}-{len(stub.snapshots)}.snapshot"
                    stub.snapshots[name] = data
                    return self._send(
                        200,
                        {
                            "name": name,
                            "creation_time": "2026-11-25T00:00:00",
                            "size": len(data),
                            "checksum": hashlib.sha256(data).hexdigest(),
                        },
                    )
                return self._send(404, {"path": self.path, "method": self.command})

            def do_DELETE(self) -> None:
                if not self._authorised():
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                stub.snapshots.pop(parts[3], None)
                stub.deleted.append(parts[3])
                return self._send(200, True)

            def do_PUT(self) -> None:
                if not self._authorised():
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                if parts[2:] == ["snapshots", "recover"]:
                    body = self._body()
                    with urllib.request.urlopen(body["location"], timeout=10) as response:
                        data = response.read()
                    if hashlib.sha256(data).hexdigest() != body.get("checksum"):
                        return self._send(400, None, json.dumps({"status": {"error": "checksum mismatch"}}).encode())
                    stub.restored[parts[1]] = data
                    if stub.on_recover is not None:
                        stub.on_recover(parts[1], data)
                    stub.collections.add(parts[1])
                    return self._send(200, True)
                return self._send(404, {"path": self.path, "method": self.command})

        return Handler
