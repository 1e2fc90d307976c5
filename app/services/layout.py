"""The page collection's layout: its named vectors, their storage and quantization, and the search parameters
the two-stage query uses on them.

`VectorIndex` (app/services/vectors.py) creates and queries the collection with these; benchmarks/retrieval.py
builds Qdrant's engine in-process from the same `vectors_config` and sends the same parameters, so the speed and
recall it reports are the ones production serves.
"""

from __future__ import annotations

from typing import Literal

from qdrant_client import models

ORIGINAL = "original"
ROWS = "mean_pooling_rows"
COLUMNS = "mean_pooling_columns"
Quantization = Literal["none", "scalar", "binary"]
QUANTIZATIONS: tuple[str, ...] = ("none", "scalar", "binary")
Datatype = Literal["float32", "float16"]

# Two-stage search tuning, measured by benchmarks/retrieval.py on this exact layout and request (docs/indexing.md,
# "Two-stage search speed"; 5,000 pages: 24.2x exhaustive MaxSim at recall@10 0.960; schema 2 gave 18-20x at
# 0.953, the template 9.1x). The pooled graph is the lever: with m=32 / ef_construct=200 the HNSW neighbourhoods are
# good enough that the beam can be as narrow as the shortlist (recall@10 at 50 candidates: ef 50 0.960, ef 150
# 0.987, while the time grows by half), and the shortlist is what the rerank pays for (MaxSim over the ~1,030
# `original` vectors of each candidate costs as much as ~27 pooled HNSW visits). ef is explicit rather than left to
# the server default (ef_construct), so the recall the benchmark reports is the one served.
PREFETCH_LIMIT = 50
PREFETCH_EF = 50
# The pooled vectors' graph (Qdrant's defaults are m=16, ef_construct=100): twice the links per node and a wider
# build beam cost graph RAM and indexing time, and buy the recall that lets the query beam shrink to the shortlist
# (benchmarks/retrieval.py --pooled-m / --pooled-ef-construct explore others).
POOLED_HNSW = models.HnswConfigDiff(m=32, ef_construct=200)
# The pooled vectors' copy the graph walk reads (QDRANT_QUANTIZATION overrides it): int8 in RAM, measured with the
# graph above; the float16 originals stay the rescoring source.
POOLED_QUANTIZATION: Quantization = "scalar"
RERANK_QUANTIZATION = models.ScalarQuantization(
    # In RAM (~132 KB per page, half the float16 `original` that stays on disk): memory-mapped from disk the
    # int8 rerank measured barely faster than float16 (benchmarks/retrieval.py, 300 pages: 1.05x vs 1.3x).
    scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
)
# The rerank scores the shortlist on the int8 copy, then rescores its best 2 x k on float16: int8 alone swaps
# near-ties at rank k (recall@10 -0.007 at 5,000 pages); rescored, it keeps the float16 rerank's recall in 4%
# (this shortlist) to 24% (a 4x longer one) less time. search_exhaustive ignores quantization: the exact reference.
RERANK_PARAMS = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0))
EXACT_PARAMS = models.SearchParams(exact=True, quantization=models.QuantizationSearchParams(ignore=True))


def pooled_quantization_config(
    quantization: Quantization,
) -> models.ScalarQuantization | models.BinaryQuantization | None:
    if quantization == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
        )
    if quantization == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
    return None


def vectors_config(
    *, dim: int, on_disk: bool, quantization: Quantization, datatype: Datatype
) -> dict[str, models.VectorParams]:
    """The collection's named vectors (benchmarks/retrieval.py builds its engine shard from this same config)."""
    dtype = models.Datatype.FLOAT16 if datatype == "float16" else models.Datatype.FLOAT32
    maxsim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    quant = pooled_quantization_config(quantization)
    pooled = {
        name: models.VectorParams(
            size=dim,
            distance=models.Distance.COSINE,
            multivector_config=maxsim,
            datatype=dtype,
            on_disk=False,
            hnsw_config=POOLED_HNSW,
            quantization_config=quant,
        )
        for name in (ROWS, COLUMNS)
    }
    return {
        ORIGINAL: models.VectorParams(
            size=dim,
            distance=models.Distance.COSINE,
            multivector_config=maxsim,
            datatype=dtype,
            on_disk=on_disk,
            # Rerank-only: building a graph over ~1,000 vectors per page would cost RAM and indexing
            # time for an index no query ever walks.
            hnsw_config=models.HnswConfigDiff(m=0),
            quantization_config=RERANK_QUANTIZATION,
        ),
        **pooled,
    }
