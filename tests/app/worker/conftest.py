from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from indexing_support import serve_in_thread

from app.embedder.tiny_model import ensure_tiny_colpali


@pytest.fixture(scope="session")
def tiny_colpali(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_colpali(tmp_path_factory.getbasetemp() / "tiny-colpali")


@pytest.fixture(scope="session")
def embedder_url(tiny_colpali: Path) -> Iterator[str]:
    """The real embedder app on the tiny model, over real HTTP."""
    from app.embedder.app import create_app
    from app.embedder.settings import EmbedderSettings

    settings = EmbedderSettings(model=str(tiny_colpali), max_batch_size=8, max_wait_ms=2)
    with serve_in_thread(create_app(settings)) as url:
        yield url
