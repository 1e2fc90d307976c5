"""Mean pooling of a ColPali page embedding over the rows and columns of its image-patch grid.

The pooled multivectors (one vector per patch row / column, plus the page's non-image tokens) are what the
first search stage scans with HNSW; the full `original` multivector only reranks the shortlist. That keeps the
first stage ~30x cheaper than exhaustive MaxSim while the rerank keeps the ranking exact on the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class PatchSpan:
    """Where the image patches sit inside a page multivector: `length == rows * cols` tokens from `start`."""

    start: int
    length: int
    rows: int
    cols: int

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ValueError(f"PatchSpan.start={self.start}: must be >= 0")
        if self.rows <= 0 or self.cols <= 0:
            raise ValueError(f"PatchSpan grid={self.rows}x{self.cols}: both sides must be > 0")
        if self.length != self.rows * self.cols:
            raise ValueError(
                f"PatchSpan.length={self.length}: must equal rows*cols={self.rows}*{self.cols}={self.rows * self.cols}"
            )


@dataclass(frozen=True)
class PooledVectors:
    rows: np.ndarray
    columns: np.ndarray


def mean_pool(vectors: np.ndarray, span: PatchSpan) -> PooledVectors:
    """Pool `vectors` (tokens x dim) by patch rows and by patch columns.

    Tokens outside the patch span (the prompt / special tokens ColPali appends) are kept as they are in both
    pooled sets, as the two-stage recipe does, because queries match them too.
    """
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D (tokens x dim), got shape {vectors.shape}")
    end = span.start + span.length
    if end > vectors.shape[0]:
        raise ValueError(f"patch span [{span.start}, {end}) does not fit a multivector of {vectors.shape[0]} tokens")
    work = vectors.astype(np.float32, copy=False)
    grid = work[span.start : end].reshape(span.rows, span.cols, work.shape[1])
    extra = np.concatenate([work[: span.start], work[end:]], axis=0)
    rows = np.concatenate([grid.mean(axis=1), extra], axis=0)
    columns = np.concatenate([grid.mean(axis=0), extra], axis=0)
    return PooledVectors(rows=rows, columns=columns)
