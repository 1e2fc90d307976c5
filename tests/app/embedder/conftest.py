"""The tiny ColPali checkpoint (built once per session under pytest's basetemp) and an encoder on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.embedder.tiny_model import ensure_tiny_colpali


@pytest.fixture(scope="session")
def tiny_colpali(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_colpali(tmp_path_factory.getbasetemp() / "tiny-colpali")


@pytest.fixture(scope="session")
def tiny_encoder(tiny_colpali: Path):
    from app.embedder.encoder import ColPaliEncoder

    return ColPaliEncoder(str(tiny_colpali), device="auto", dtype="auto", local_files_only=True)
