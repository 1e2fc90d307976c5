"""VectorIndex on qdrant-client local mode: schema, migrations, idempotent upserts, two-stage search."""

from __future__ import annotations

import numpy as np
import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient, models

from app.services.layout import COLUMNS, ORIGINAL, POOLED_HNSW, PREFETCH_EF, RERANK_QUANTIZATION, ROWS
from app.services.pooling import PatchSpan, mean_pool
from app.services.vectors import (
    SCHEMA_VERSION,
    PageVectors,
    SchemaError,
    VectorIndex,
    make_qdrant_client,
    point_id,
)

DIM = 16
SPAN = PatchSpan(start=0, length=16, rows=4, cols=4)


def page(doc: str, number: int, rng: np.random.Generator, owner: str = "alice") -> PageVectors:
    original = rng.standard_normal((SPAN.length + 3, DIM)).astype(np.float32)
    pooled = mean_pool(original, SPAN)
    return PageVectors(
        document_id=doc,
        page=number,
        original=original,
        rows=pooled.rows,
        columns=pooled.columns,
        payload={"filename": f"{doc}.pdf", "object_key": f"pages/{doc}/{number:05d}.jpg", "owner": owner},
    )


@pytest_asyncio.fixture(loop_scope="function")
async def index():
    client = AsyncQdrantClient(location=":memory:")
    vi = VectorIndex(client, collection="pages", dim=DIM, prefetch_limit=50)
    await vi.ensure_collection()
    yield vi
    await client.close()


async def test_ensure_collection_creates_versioned_collection_behind_alias():
    client = AsyncQdrantClient(location=":memory:")
    vi = VectorIndex(client, collection="pages", dim=DIM)
    first = await vi.ensure_collection()
    assert first.created and first.collection == f"pages_v{SCHEMA_VERSION}" and first.from_version is None
    assert await vi.aliases() == {"pages": f"pages_v{SCHEMA_VERSION}"}
    info = await client.get_collection("pages")
    vectors = info.config.params.vectors
    assert isinstance(vectors, dict) and info.config.metadata is not None
    assert set(vectors) == {ORIGINAL, ROWS, COLUMNS}
    hnsw = vectors[ORIGINAL].hnsw_config
    assert hnsw is not None and hnsw.m == 0
    assert vectors[ORIGINAL].on_disk is True
    assert all(
        v.multivector_config is not None and v.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
        for v in vectors.values()
    )
    assert info.config.metadata["schema_version"] == SCHEMA_VERSION
    again = await vi.ensure_collection()
    assert not again.created and again.from_version == SCHEMA_VERSION
    assert await vi.collection_version() == SCHEMA_VERSION
    await client.close()


async def test_legacy_template_collection_is_migrated_in_place():
    client = AsyncQdrantClient(location=":memory:")
    params = models.VectorParams(
        size=DIM,
        distance=models.Distance.COSINE,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
    )
    await client.create_collection("pages", vectors_config={ORIGINAL: params, ROWS: params, COLUMNS: params})
    vi = VectorIndex(client, collection="pages", dim=DIM)
    assert await vi.collection_version() == 0
    result = await vi.ensure_collection()
    assert (result.collection, result.from_version, result.to_version) == ("pages", 0, SCHEMA_VERSION)
    assert await vi.collection_version() == SCHEMA_VERSION
    await client.close()


async def test_refuses_newer_schema_and_wrong_dimension():
    client = AsyncQdrantClient(location=":memory:")
    vi = VectorIndex(client, collection="pages", dim=DIM)
    await vi.ensure_collection()
    await client.update_collection(f"pages_v{SCHEMA_VERSION}", metadata={"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(SchemaError, match="newer than this code"):
        await vi.ensure_collection()
    with pytest.raises(SchemaError, match="size 16, expected 32"):
        await VectorIndex(client, collection="pages", dim=32).ensure_collection()
    await client.close()


async def test_upsert_is_idempotent_per_page(index):
    rng = np.random.default_rng(1)
    pages = [page("doc-a", n, rng) for n in range(1, 4)]
    assert await index.upsert_pages(pages) == 3
    assert await index.upsert_pages(pages) == 3
    assert await index.count() == 3
    stored = await index.document_pages("doc-a")
    assert [p["page"] for p in stored] == [1, 2, 3]
    assert all(p["schema_version"] == SCHEMA_VERSION and p["indexed_at"] for p in stored)
    assert point_id("doc-a", 1) == point_id("doc-a", 1) != point_id("doc-a", 2)


async def test_two_stage_search_finds_the_page_a_query_was_cut_from(index):
    rng = np.random.default_rng(2)
    pages = [page("doc-a", n, rng) for n in range(1, 21)] + [page("doc-b", n, rng, "bob") for n in range(1, 21)]
    await index.upsert_pages(pages)
    target = pages[27]  # doc-b page 8
    query = target.original[[0, 5, 9]] + 0.05 * rng.standard_normal((3, DIM)).astype(np.float32)
    hits = await index.search(query, k=5)
    assert (hits[0].document_id, hits[0].page) == ("doc-b", 8)
    assert hits[0].payload["object_key"] == "pages/doc-b/00008.jpg"
    exact = await index.search_exhaustive(query, k=5)
    assert [h.id for h in hits] == [h.id for h in exact]
    only_a = await index.search(query, k=5, document_id="doc-a")
    assert only_a and {h.document_id for h in only_a} == {"doc-a"}
    assert {h.document_id for h in await index.search(query, k=5, owner="alice")} == {"doc-a"}


async def test_delete_document_removes_only_its_pages(index):
    rng = np.random.default_rng(3)
    await index.upsert_pages([page("doc-a", n, rng) for n in range(1, 4)] + [page("doc-b", 1, rng)])
    assert await index.delete_document("doc-a") == 3
    assert await index.delete_document("doc-a") == 0
    assert await index.document_pages("doc-a") == []
    assert len(await index.document_pages("doc-b")) == 1


async def test_alias_switch_is_atomic_and_returns_previous(index):
    newer = await index.new_version_name()
    await index.create_physical(newer)
    assert await index.switch_alias(newer) == f"pages_v{SCHEMA_VERSION}"
    assert await index.resolve() == newer
    assert await index.count() == 0


async def test_bad_inputs_are_refused(index):
    rng = np.random.default_rng(4)
    bad = page("d", 1, rng)
    with pytest.raises(ValueError, match="expected \\(n>0, 16\\)"):
        await index.upsert_pages(
            [PageVectors(document_id="d", page=1, original=bad.original[:, :8], rows=bad.rows, columns=bad.columns)]
        )
    with pytest.raises(ValueError, match="k=0"):
        await index.search(np.ones((2, DIM)), k=0)
    with pytest.raises(ValueError, match="non-empty"):
        await index.search(np.ones((0, DIM)), k=3)
    with pytest.raises(ValueError, match="quantization='pq'"):
        VectorIndex(index.client, collection="x", quantization="pq")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefetch_ef=20: must be >= prefetch_limit=50"):
        VectorIndex(index.client, collection="x", prefetch_limit=50, prefetch_ef=20)


async def test_ping_and_local_path_client(tmp_path):
    client = make_qdrant_client(str(tmp_path / "qdrant"))
    vi = VectorIndex(client, collection="pages", dim=DIM, quantization="scalar")
    assert await vi.ping() is False
    await vi.ensure_collection()
    assert await vi.ping() is True
    await client.close()


async def test_rerank_reads_int8_original_and_exhaustive_stays_exact(index):
    """`original` carries int8 scalar quantization; search reranks on it (best 2 x k rescored), with an explicit
    HNSW ef on the pooled prefetches; the exhaustive reference ignores quantization."""
    info = await index.client.get_collection("pages")
    vectors = info.config.params.vectors
    assert isinstance(vectors, dict)
    quant = vectors[ORIGINAL].quantization_config
    assert isinstance(quant, models.ScalarQuantization) and quant.scalar.type == models.ScalarType.INT8
    # Schema 3: the pooled vectors' int8 copy is the default (QDRANT_QUANTIZATION), walked on the dense graph.
    assert isinstance(vectors[ROWS].quantization_config, models.ScalarQuantization)
    assert vectors[ROWS].hnsw_config is not None and vectors[ROWS].hnsw_config.m == POOLED_HNSW.m

    sent: list[dict] = []
    real = index.client.query_points

    async def spy(*args, **kwargs):
        sent.append(kwargs)
        return await real(*args, **kwargs)

    index.client.query_points = spy  # type: ignore[method-assign]
    await index.upsert_pages([page("doc-a", n, np.random.default_rng(n)) for n in range(1, 4)])
    query = np.ones((3, DIM), dtype=np.float32)
    assert len(await index.search(query, k=2)) == 2
    assert len(await index.search_exhaustive(query, k=2)) == 2
    two_stage, exhaustive = sent
    rerank = two_stage["search_params"].quantization
    assert two_stage["using"] == ORIGINAL and rerank.ignore is not True
    assert rerank.rescore is True and rerank.oversampling == 2.0
    assert [p.params.hnsw_ef for p in two_stage["prefetch"]] == [PREFETCH_EF, PREFETCH_EF]
    assert [p.limit for p in two_stage["prefetch"]] == [50, 50]
    assert exhaustive["search_params"].exact is True and exhaustive["search_params"].quantization.ignore is True


async def test_schema_1_collection_gets_the_int8_rerank_copy_in_place():
    client = AsyncQdrantClient(location=":memory:")
    maxsim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE, multivector_config=maxsim)
    await client.create_collection(
        "pages_v1", vectors_config={ORIGINAL: params, ROWS: params, COLUMNS: params}, metadata={"schema_version": 1}
    )
    vi = VectorIndex(client, collection="pages", dim=DIM)
    await vi.switch_alias("pages_v1")
    updates: list[dict] = []
    real = client.update_collection

    async def spy(*args, **kwargs):
        updates.append(kwargs)
        return await real(*args, **kwargs)

    client.update_collection = spy  # type: ignore[method-assign]
    result = await vi.ensure_collection()
    assert (result.collection, result.from_version, result.to_version) == ("pages_v1", 1, SCHEMA_VERSION)
    diffs = [u["vectors_config"] for u in updates if u.get("vectors_config")]
    # 1 -> 2 adds the int8 rerank copy; 2 -> 3 (its own test below) then moves the pooled vectors.
    assert diffs[0] == {ORIGINAL: models.VectorParamsDiff(quantization_config=RERANK_QUANTIZATION)}
    assert len(diffs) == 2 and set(diffs[1]) == {ROWS, COLUMNS}
    assert await vi.collection_version() == SCHEMA_VERSION
    await client.close()


async def test_schema_2_collection_gets_the_dense_pooled_graph_and_int8_copy_in_place():
    client = AsyncQdrantClient(location=":memory:")
    maxsim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE, multivector_config=maxsim)
    await client.create_collection(
        "pages_v2", vectors_config={ORIGINAL: params, ROWS: params, COLUMNS: params}, metadata={"schema_version": 2}
    )
    vi = VectorIndex(client, collection="pages", dim=DIM)
    await vi.switch_alias("pages_v2")
    updates: list[dict] = []
    real = client.update_collection

    async def spy(*args, **kwargs):
        updates.append(kwargs)
        return await real(*args, **kwargs)

    client.update_collection = spy  # type: ignore[method-assign]
    result = await vi.ensure_collection()
    assert (result.from_version, result.to_version) == (2, SCHEMA_VERSION) == (2, 3)
    (diff,) = [u["vectors_config"] for u in updates if u.get("vectors_config")]
    assert set(diff) == {ROWS, COLUMNS}  # `original` keeps no graph and its int8 rerank copy
    for name in (ROWS, COLUMNS):
        assert diff[name].hnsw_config == POOLED_HNSW
        assert isinstance(diff[name].quantization_config, models.ScalarQuantization)
    assert await vi.collection_version() == SCHEMA_VERSION
    await client.close()


async def test_the_migration_turns_quantization_off_when_configured_so():
    client = AsyncQdrantClient(location=":memory:")
    maxsim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE, multivector_config=maxsim)
    await client.create_collection(
        "pages_v2", vectors_config={ORIGINAL: params, ROWS: params, COLUMNS: params}, metadata={"schema_version": 2}
    )
    vi = VectorIndex(client, collection="pages", dim=DIM, quantization="none")
    await vi.switch_alias("pages_v2")
    updates: list[dict] = []
    real = client.update_collection

    async def spy(*args, **kwargs):
        updates.append(kwargs)
        return await real(*args, **kwargs)

    client.update_collection = spy  # type: ignore[method-assign]
    await vi.ensure_collection()
    (diff,) = [u["vectors_config"] for u in updates if u.get("vectors_config")]
    assert diff[ROWS].quantization_config == models.Disabled.DISABLED
    await client.close()
