"""Two-stage (pooled HNSW prefetch -> MaxSim rerank) vs exhaustive MaxSim on the real Qdrant engine.

Runs `qdrant-edge-py` (Qdrant's engine in-process) with the production collection layout (`original` rerank-only
with HNSW m=0, `mean_pooling_rows` / `mean_pooling_columns` with HNSW, float16 storage) on ColPali-shaped
synthetic pages: 1,030 x 128 unit vectors per page (a 32 x 32 patch grid + 6 prompt tokens), with spatially
coherent regions drawn from a shared concept vocabulary so pages overlap the way real documents do. Queries
are ~20 tokens built from one page's concepts. Prints p50/p95 latency of both strategies, the p50 ratio and
recall@10 of two-stage against exhaustive.

    .venv/bin/python benchmarks/retrieval.py --pages 1000 5000 --queries 12 --prefetch 100 200
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import qdrant_edge as qe

DIM, GRID, EXTRA = 128, 32, 6
TOKENS = GRID * GRID + EXTRA


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
    grid = vectors[: GRID * GRID].reshape(GRID, GRID, DIM)
    extra = vectors[GRID * GRID :]
    return np.concatenate([grid.mean(axis=1), extra]), np.concatenate([grid.mean(axis=0), extra])


def make_shard(path: Path) -> qe.EdgeShard:
    maxsim = qe.MultiVectorConfig(comparator=qe.MultiVectorComparator.MaxSim)
    f16 = qe.VectorStorageDatatype.Float16
    hnsw = qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10)
    config = qe.EdgeConfig(
        vectors={
            "original": qe.EdgeVectorParams(
                size=DIM,
                distance=qe.Distance.Cosine,
                multivector_config=maxsim,
                datatype=f16,
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10),
                memory=qe.Memory.Cached,
            ),
            "mean_pooling_rows": qe.EdgeVectorParams(
                size=DIM, distance=qe.Distance.Cosine, multivector_config=maxsim, datatype=f16, hnsw_config=hnsw
            ),
            "mean_pooling_columns": qe.EdgeVectorParams(
                size=DIM, distance=qe.Distance.Cosine, multivector_config=maxsim, datatype=f16, hnsw_config=hnsw
            ),
        },
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1000, default_segment_number=2),
    )
    return qe.EdgeShard.create(str(path), config)


def build(path: Path, corpus: Corpus, pages: int, batch: int = 50) -> tuple[qe.EdgeShard, list[np.ndarray], float]:
    shard = make_shard(path)
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
                        {"original": vectors, "mean_pooling_rows": rows, "mean_pooling_columns": cols},
                    ),
                    payload={"page": pid},
                )
            )
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    while shard.optimize():
        pass
    return shard, concept_sets, time.perf_counter() - started


def two_stage(shard: qe.EdgeShard, query: list[list[float]], k: int, prefetch: int) -> list[int]:
    ef = qe.SearchParams(hnsw_ef=2 * prefetch)
    request = qe.QueryRequest(
        limit=k,
        query=qe.Query.Nearest(query, using="original"),
        prefetches=[
            qe.Prefetch(limit=prefetch, query=qe.Query.Nearest(query, using="mean_pooling_rows"), params=ef),
            qe.Prefetch(limit=prefetch, query=qe.Query.Nearest(query, using="mean_pooling_columns"), params=ef),
        ],
        with_payload=False,
    )
    return [int(p.id) for p in shard.query(request)]


def exhaustive(shard: qe.EdgeShard, query: list[list[float]], k: int) -> list[int]:
    request = qe.QueryRequest(
        limit=k,
        query=qe.Query.Nearest(query, using="original"),
        params=qe.SearchParams(exact=True),
        with_payload=False,
    )
    return [int(p.id) for p in shard.query(request)]


def run(pages: int, queries: int, k: int, prefetches: list[int], workdir: Path) -> list[dict[str, float]]:
    corpus = Corpus(seed=7)
    path = workdir / f"shard-{pages}"
    shard, concept_sets, build_s = build(path, corpus, pages)
    rng = np.random.default_rng(99)
    qs = [corpus.query(concept_sets[int(rng.integers(0, pages))], rng).tolist() for _ in range(queries)]
    exhaustive(shard, qs[0], k)  # warm caches
    t_ex, exact = [], []
    for q in qs:
        t0 = time.perf_counter()
        exact.append(exhaustive(shard, q, k))
        t_ex.append(time.perf_counter() - t0)
    rows = []
    for prefetch in prefetches:
        two_stage(shard, qs[0], k, prefetch)
        t_two, recalls = [], []
        for q, exact_ids in zip(qs, exact, strict=True):
            t0 = time.perf_counter()
            fast_ids = two_stage(shard, q, k, prefetch)
            t_two.append(time.perf_counter() - t0)
            recalls.append(len(set(exact_ids) & set(fast_ids)) / k)
        p50_two, p50_ex = statistics.median(t_two), statistics.median(t_ex)
        rows.append(
            {
                "pages": pages,
                "prefetch": prefetch,
                "build_s": build_s,
                "exhaustive_p50_ms": p50_ex * 1000,
                "exhaustive_p95_ms": float(np.percentile(t_ex, 95) * 1000),
                "two_stage_p50_ms": p50_two * 1000,
                "two_stage_p95_ms": float(np.percentile(t_two, 95) * 1000),
                "speedup_p50": p50_ex / p50_two,
                "recall_at_10": float(np.mean(recalls)),
            }
        )
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--prefetch", type=int, nargs="+", default=[100, 200], help="candidates per pooled prefetch (each is measured)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vr-retrieval-"))
    print(f"qdrant-edge-py in-process; {DIM}-d float16 multivectors, {TOKENS} tokens/page")
    columns = [("pages", 6), ("prefetch", 8), ("build s", 8), ("exh p50 ms", 11), ("2st p50 ms", 11)]
    columns += [("speedup", 8), ("recall@10", 9)]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    for pages in args.pages:
        for r in run(pages, args.queries, args.k, args.prefetch, workdir):
            print(
                f"{r['pages']:>6} {r['prefetch']:>8} {r['build_s']:>8.1f} {r['exhaustive_p50_ms']:>11.1f} "
                f"{r['two_stage_p50_ms']:>11.1f} {r['speedup_p50']:>7.1f}x {r['recall_at_10']:>9.3f}",
                flush=True,
            )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
