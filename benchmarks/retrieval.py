"""Two-stage (pooled HNSW prefetch -> MaxSim rerank) vs exhaustive MaxSim on the real Qdrant engine.

Runs `qdrant-edge-py` (Qdrant's engine in-process) on the production collection layout and search request:
the shard is built from `app.services.layout.vectors_config` (`original` rerank-only with HNSW m=0 and its
int8 scalar-quantized copy, `mean_pooling_rows` / `mean_pooling_columns` with the dense pooled HNSW graph and
their int8 copy, float16 storage), and the
two-stage request uses the production prefetch limit, HNSW ef and rerank parameters (int8, best 2 x k
rescored in float16).
Pages are ColPali-shaped and synthetic: 1,030 x 128 unit vectors per page (a 32 x 32 patch grid + 6 prompt
tokens), with spatially coherent regions drawn from a shared concept vocabulary so pages overlap the way real
documents do. Queries are ~20 tokens built from one page's concepts.

Per query, exhaustive MaxSim (exact, float16, quantization ignored: the reference ranking) and every two-stage
variant run back to back, so the ratios compare like with like on a loaded machine. Each prefetch limit is
measured with the production int8 rerank and, for comparison, a float16 rerank (what schema 1 ran). Prints
p50 latencies, the p50 ratio and recall@10 against exhaustive. `--workdir DIR` keeps the built shard there and
reuses it on the next run with the same page count and layout (only the query side changed); the 5,000-page
build takes 5-30 minutes on 2 cores, depending on load.

    .venv/bin/python benchmarks/retrieval.py --pages 5000 --queries 30      # the README figure
    .venv/bin/python benchmarks/retrieval.py --pages 2000 --prefetch 50 100 --workdir /tmp/vr-bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import qdrant_edge as qe
from qdrant_client import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.services.layout import (
    COLUMNS,
    EXACT_PARAMS,
    ORIGINAL,
    POOLED_QUANTIZATION,
    PREFETCH_EF,
    PREFETCH_LIMIT,
    RERANK_PARAMS,
    ROWS,
    Quantization,
    vectors_config,
)
from app.services.pooling import PatchSpan, mean_pool

DIM, GRID, EXTRA = 128, 32, 6
TOKENS = GRID * GRID + EXTRA
SPAN = PatchSpan(start=0, length=GRID * GRID, rows=GRID, cols=GRID)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Corpus:
    def __init__(self, seed: int, concepts: int = 4000) -> None:
        self.rng = np.random.default_rng(seed)
        self.concepts = unit(self.rng.standard_normal((concepts, DIM)).astype(np.float32))

    def page(self, page_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Returns (multivector 1030 x 128, the page's concept ids)."""
        ids = page_rng.choice(len(self.concepts), size=12, replace=False)
        # Regions: a coarse 4x4 layout of blocks, each block one concept (a heading, a table, a figure...).
        layout = page_rng.integers(0, len(ids), size=(4, 4)).repeat(8, axis=0).repeat(8, axis=1)
        base = self.concepts[ids][layout.reshape(-1)]
        # Noise about as large as the signal: a patch's cosine to its region's concept is ~0.7, like a ColPali
        # patch token to the query token that names what it shows.
        patches = unit(base + page_rng.standard_normal((GRID * GRID, DIM)).astype(np.float32) / np.sqrt(DIM))
        extra = unit(page_rng.standard_normal((EXTRA, DIM)).astype(np.float32))
        return np.concatenate([patches, extra]).astype(np.float32), ids

    def query(self, concept_ids: np.ndarray, rng: np.random.Generator, tokens: int = 20) -> np.ndarray:
        picks = rng.choice(concept_ids, size=3, replace=False)
        base = self.concepts[rng.choice(picks, size=tokens)]
        return unit(base + rng.standard_normal((tokens, DIM)).astype(np.float32) / np.sqrt(DIM))


def pooled(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The worker's pooling (app.services.pooling), prompt tokens kept in both sets."""
    result = mean_pool(vectors, SPAN)
    return result.rows, result.columns


# What the server uses for fields the production config leaves unset (Qdrant's collection defaults).
SERVER_HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}


def edge_quantization(config: models.QuantizationConfig | None) -> Any:
    if config is None:
        return None
    if isinstance(config, models.ScalarQuantization):
        scalar = config.scalar
        return qe.ScalarQuantizationConfig(
            type=qe.ScalarType.Int8, quantile=scalar.quantile, always_ram=scalar.always_ram
        )
    if isinstance(config, models.BinaryQuantization):
        return qe.BinaryQuantizationConfig(always_ram=config.binary.always_ram)
    raise ValueError(f"no engine equivalent for {config!r}")


def edge_params(params: models.VectorParams) -> qe.EdgeVectorParams:
    """The same vector config as the server gets, in the engine's own types."""
    assert params.distance == models.Distance.COSINE and params.multivector_config is not None
    hnsw = {**SERVER_HNSW, **(params.hnsw_config.model_dump(exclude_none=True) if params.hnsw_config else {})}
    return qe.EdgeVectorParams(
        size=params.size,
        distance=qe.Distance.Cosine,
        multivector_config=qe.MultiVectorConfig(comparator=qe.MultiVectorComparator.MaxSim),
        datatype=qe.VectorStorageDatatype.Float16
        if params.datatype == models.Datatype.FLOAT16
        else qe.VectorStorageDatatype.Float32,
        on_disk=params.on_disk,
        hnsw_config=qe.HnswIndexConfig(**hnsw),
        quantization_config=edge_quantization(params.quantization_config),
    )


def make_shard(path: Path, pooled_quantization: Quantization, pooled_hnsw: dict[str, int]) -> qe.EdgeShard:
    config = vectors_config(dim=DIM, on_disk=True, quantization=pooled_quantization, datatype="float16")
    for name in (ROWS, COLUMNS):  # a candidate graph for the pooled vectors (--pooled-m / --pooled-ef-construct)
        if pooled_hnsw:
            base = config[name].hnsw_config.model_dump(exclude_none=True) if config[name].hnsw_config else {}
            graph = models.HnswConfigDiff(**{**base, **pooled_hnsw})
            config[name] = config[name].model_copy(update={"hnsw_config": graph})
    edge = qe.EdgeConfig(
        vectors={name: edge_params(params) for name, params in config.items()},
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1000, default_segment_number=2),
    )
    if (path / "built").exists():
        return qe.EdgeShard.load(str(path))
    shutil.rmtree(path, ignore_errors=True)
    return qe.EdgeShard.create(str(path), edge)


def build(
    path: Path,
    corpus: Corpus,
    pages: int,
    pooled_quantization: Quantization,
    pooled_hnsw: dict[str, int],
    batch: int = 50,
) -> tuple[qe.EdgeShard, list[np.ndarray], float | None]:
    """A shard with `pages` pages, and each page's concept ids; build seconds, None when reused from `path`."""
    shard = make_shard(path, pooled_quantization, pooled_hnsw)
    if (path / "built").exists():
        return shard, [corpus.page(np.random.default_rng(10_000 + pid))[1] for pid in range(pages)], None
    concept_sets = []
    started = time.perf_counter()
    for start in range(0, pages, batch):
        points = []
        for pid in range(start, min(pages, start + batch)):
            vectors, ids = corpus.page(np.random.default_rng(10_000 + pid))
            concept_sets.append(ids)
            rows, cols = pooled(vectors)
            points.append(
                qe.Point(
                    id=pid,
                    # numpy arrays go straight into the engine (no Python float lists).
                    vector=cast(
                        "dict[str, Any]",
                        {ORIGINAL: vectors, ROWS: rows, COLUMNS: cols},
                    ),
                    payload={"page": pid},
                )
            )
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    while shard.optimize():
        pass
    elapsed = time.perf_counter() - started
    (path / "built").write_text(f"{pages}\n")
    return shard, concept_sets, elapsed


def edge_search_params(params: models.SearchParams, hnsw_ef: int | None = None) -> qe.SearchParams:
    quant = params.quantization
    return qe.SearchParams(
        hnsw_ef=hnsw_ef if hnsw_ef is not None else params.hnsw_ef,
        exact=bool(params.exact),
        quantization=None
        if quant is None
        else qe.QuantizationSearchParams(
            ignore=bool(quant.ignore), rescore=quant.rescore, oversampling=quant.oversampling
        ),
    )


def two_stage(
    shard: qe.EdgeShard, query: list[list[float]], k: int, prefetch: int, ef: int, rerank: models.SearchParams
) -> list[int]:
    """VectorIndex.search's request: both pooled prefetches (hnsw_ef as production sets it), rerank on `original`."""
    limit = max(prefetch, k)
    pooled = qe.SearchParams(hnsw_ef=max(ef, limit))
    request = qe.QueryRequest(
        limit=k,
        query=qe.Query.Nearest(query, using=ORIGINAL),
        prefetches=[
            qe.Prefetch(limit=limit, query=qe.Query.Nearest(query, using=ROWS), params=pooled),
            qe.Prefetch(limit=limit, query=qe.Query.Nearest(query, using=COLUMNS), params=pooled),
        ],
        params=edge_search_params(rerank),
        with_payload=False,
    )
    return [int(p.id) for p in shard.query(request)]


def exhaustive(shard: qe.EdgeShard, query: list[list[float]], k: int) -> list[int]:
    """VectorIndex.search_exhaustive's request: exact float MaxSim over every page."""
    request = qe.QueryRequest(
        limit=k,
        query=qe.Query.Nearest(query, using=ORIGINAL),
        params=edge_search_params(EXACT_PARAMS),
        with_payload=False,
    )
    return [int(p.id) for p in shard.query(request)]


# The rerank schema 1 ran (float16 `original`), measured beside production's to show where the speed-up comes from.
FLOAT_RERANK = models.SearchParams(quantization=models.QuantizationSearchParams(ignore=True))
RERANKS = {"int8": RERANK_PARAMS, "f16": FLOAT_RERANK}


def run(
    pages: int,
    queries: int,
    k: int,
    prefetches: list[int],
    efs: list[int],
    reranks: list[str],
    pooled_quantization: Quantization,
    workdir: Path,
    pooled_hnsw: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    corpus = Corpus(seed=7)
    graph = "".join(f"-{key}{value}" for key, value in sorted((pooled_hnsw or {}).items()))
    path = workdir / f"shard-{pages}-{pooled_quantization}{graph}"
    shard, concept_sets, build_s = build(path, corpus, pages, pooled_quantization, pooled_hnsw or {})
    rng = np.random.default_rng(99)
    qs = [corpus.query(concept_sets[int(rng.integers(0, pages))], rng).tolist() for _ in range(queries)]
    variants = [(p, ef, name) for p in prefetches for ef in efs for name in reranks]
    exhaustive(shard, qs[0], k)  # warm caches
    for p, ef, name in variants:
        two_stage(shard, qs[0], k, p, ef, RERANKS[name])
    t_ex: list[float] = []
    times: dict[tuple[int, int, str], list[float]] = {v: [] for v in variants}
    recalls: dict[tuple[int, int, str], list[float]] = {v: [] for v in variants}
    for q in qs:  # interleaved: every strategy sees the same machine load
        t0 = time.perf_counter()
        exact = exhaustive(shard, q, k)
        t_ex.append(time.perf_counter() - t0)
        for v in variants:
            t0 = time.perf_counter()
            fast = two_stage(shard, q, k, v[0], v[1], RERANKS[v[2]])
            times[v].append(time.perf_counter() - t0)
            recalls[v].append(len(set(exact) & set(fast)) / k)
    shard.close()
    p50_ex = statistics.median(t_ex)
    return [
        {
            "pages": pages,
            "prefetch": v[0],
            "ef": max(v[1], v[0], k),
            "rerank": v[2],
            "build_s": build_s,
            "exhaustive_p50_ms": p50_ex * 1000,
            "two_stage_p50_ms": statistics.median(times[v]) * 1000,
            "two_stage_p95_ms": float(np.percentile(times[v], 95) * 1000),
            "speedup_p50": p50_ex / statistics.median(times[v]),
            "recall_at_10": float(np.mean(recalls[v])),
        }
        for v in variants
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[5000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--prefetch",
        type=int,
        nargs="+",
        default=[PREFETCH_LIMIT],
        help=f"candidates per pooled prefetch, each measured (production: {PREFETCH_LIMIT})",
    )
    parser.add_argument(
        "--ef",
        type=int,
        nargs="+",
        default=[PREFETCH_EF],
        help=f"pooled HNSW ef, each measured (production: {PREFETCH_EF})",
    )
    parser.add_argument(
        "--rerank",
        nargs="+",
        choices=sorted(RERANKS),
        default=sorted(RERANKS),
        help="int8: production (int8 MaxSim, best 2 x k rescored in float16); f16: schema 1's float16 rerank",
    )
    parser.add_argument(
        "--pooled-quantization",
        choices=["none", "scalar", "binary"],
        default=POOLED_QUANTIZATION,
        help=f"QDRANT_QUANTIZATION for the pooled vectors (production: {POOLED_QUANTIZATION})",
    )
    parser.add_argument("--pooled-m", type=int, help="HNSW m for the pooled vectors (production: the layout's)")
    parser.add_argument(
        "--pooled-ef-construct", type=int, help="HNSW ef_construct for the pooled vectors (production: the layout's)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep and reuse built shards here (empty it after a layout change)"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vr-retrieval-"))
    load = os.getloadavg()
    print(
        f"qdrant-edge-py in-process; {DIM}-d float16 multivectors, {TOKENS} tokens/page; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start",
        flush=True,
    )
    columns = [("pages", 6), ("prefetch", 8), ("ef", 4), ("rerank", 6), ("build s", 8), ("exh p50 ms", 11)]
    columns += [("2st p50 ms", 11), ("2st p95 ms", 11), ("speedup", 8), ("recall@10", 9)]
    print(" ".join(f"{name:>{width}}" for name, width in columns), flush=True)
    for pages in args.pages:
        graph = {"m": args.pooled_m, "ef_construct": args.pooled_ef_construct}
        pooled_hnsw = {key: value for key, value in graph.items() if value is not None}
        for r in run(
            pages,
            args.queries,
            args.k,
            args.prefetch,
            args.ef,
            args.rerank,
            args.pooled_quantization,
            workdir,
            pooled_hnsw,
        ):
            build = "reused" if r["build_s"] is None else f"{r['build_s']:.1f}"
            print(
                f"{r['pages']:>6} {r['prefetch']:>8} {r['ef']:>4} {r['rerank']:>6} {build:>8} "
                f"{r['exhaustive_p50_ms']:>11.1f} {r['two_stage_p50_ms']:>11.1f} {r['two_stage_p95_ms']:>11.1f} "
                f"{r['speedup_p50']:>7.1f}x {r['recall_at_10']:>9.3f}",
                flush=True,
            )
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at end", flush=True)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
