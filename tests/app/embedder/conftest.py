"""The tiny ColPali checkpoint (shared with the other indexing folders) and an encoder loaded from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.indexing_support import tiny_colpali

__all__ = ["tiny_colpali"]


@pytest.fixture(scope="session")
def tiny_encoder(tiny_colpali: Path):
    from app.embedder.encoder import ColPaliEncoder

    return ColPaliEncoder(str(tiny_colpali), device="auto", dtype="auto", local_files_only=True)
