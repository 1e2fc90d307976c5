from __future__ import annotations

import numpy as np
import pytest

from app.services.pooling import PatchSpan, mean_pool


def test_rows_and_columns_are_grid_means_plus_extra_tokens():
    grid = np.arange(2 * 3 * 2, dtype=np.float32).reshape(6, 2)
    vectors = np.concatenate([np.full((1, 2), -1.0), grid, np.full((2, 2), 9.0)]).astype(np.float32)
    pooled = mean_pool(vectors, PatchSpan(start=1, length=6, rows=2, cols=3))
    cube = grid.reshape(2, 3, 2)
    extra = np.array([[-1.0, -1.0], [9.0, 9.0], [9.0, 9.0]])
    np.testing.assert_allclose(pooled.rows, np.concatenate([cube.mean(axis=1), extra]))
    np.testing.assert_allclose(pooled.columns, np.concatenate([cube.mean(axis=0), extra]))
    assert pooled.rows.shape == (5, 2) and pooled.columns.shape == (6, 2)


def test_colpali_shape():
    pooled = mean_pool(np.ones((1030, 128), np.float16), PatchSpan(start=0, length=1024, rows=32, cols=32))
    assert pooled.rows.shape == (38, 128) and pooled.rows.dtype == np.float32


def test_bad_spans_are_refused():
    with pytest.raises(ValueError, match="must equal rows\\*cols"):
        PatchSpan(start=0, length=10, rows=3, cols=3)
    with pytest.raises(ValueError, match="does not fit"):
        mean_pool(np.ones((8, 4)), PatchSpan(start=0, length=9, rows=3, cols=3))
    with pytest.raises(ValueError, match="2-D"):
        mean_pool(np.ones(8), PatchSpan(start=0, length=4, rows=2, cols=2))
