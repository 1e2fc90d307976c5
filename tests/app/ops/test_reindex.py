"""Reindex into a new collection version from storage, with a page written mid-run, then the alias switch."""

from __future__ import annotations

import pytest_asyncio
from qdrant_client import AsyncQdrantClient

from app.services.embedder_client import EmbedderClient
from app.services.reindexer import Reindexer
from app.services.storage import PageStorage
from app.services.vectors import SCHEMA_VERSION, VectorIndex
from app.worker.pipeline import Indexer, IndexRequest, PipelineOptions
from tests.app.indexing_support import make_pdf


@pytest_asyncio.fixture(loop_scope="function")
async def parts(seaweed_s3, s3_buckets, embedder_url):
    storage = PageStorage(
        endpoint=seaweed_s3.endpoint,
        access_key=seaweed_s3.access_key,
        secret_key=seaweed_s3.secret_key,
        bucket=s3_buckets.pages,
        region=seaweed_s3.region,
        secure=False,
        sse="s3",
    )
    client = AsyncQdrantClient(location=":memory:")
    vectors = VectorIndex(client, collection="pages")
    await vectors.ensure_collection()
    embedder = EmbedderClient(embedder_url)
    indexer = Indexer(
        storage=storage, vectors=vectors, embedder=embedder, jobs=None, options=PipelineOptions(dpi=72, embed_batch=2)
    )
    yield indexer
    await embedder.aclose()
    await client.close()


async def _index(indexer: Indexer, doc: str, pages: int) -> None:
    key = f"uploads/{doc}/f.pdf"
    await indexer.storage.put_bytes(key, make_pdf(pages, seed=len(doc)), "application/pdf")
    await indexer.run(IndexRequest(job_id=f"j-{doc}", document_id=doc, object_key=key, filename="f.pdf", owner="o"))


async def test_reindex_copies_everything_switches_alias_and_catches_up(parts):
    indexer = parts
    vectors = indexer.vectors
    await _index(indexer, "doc-a", 3)
    await _index(indexer, "doc-b", 2)
    before = {p["page"]: p for p in await vectors.document_pages("doc-a")}
    await indexer.storage.delete("pages/doc-b/00002.jpg")  # a page whose image was lost

    reindexer = Reindexer(storage=indexer.storage, vectors=vectors, embedder=indexer.embedder, batch=2)
    original_reembed = reindexer._reembed
    raced = False

    async def reembed_with_a_concurrent_upload(payloads, target, result):
        nonlocal raced
        if not raced:
            raced = True
            await _index(indexer, "doc-c", 2)  # lands in the old version while the copy runs
        await original_reembed(payloads, target, result)

    reindexer._reembed = reembed_with_a_concurrent_upload  # type: ignore[method-assign]
    result = await reindexer.run(drop_old=True)

    assert result.source == f"pages_v{SCHEMA_VERSION}" and result.target.startswith(f"pages_v{SCHEMA_VERSION}_")
    assert await vectors.resolve() == result.target
    assert result.missing_images == ["pages/doc-b/00002.jpg"]
    assert result.dropped_old and not await vectors.client.collection_exists(result.source)
    assert await vectors.count() == 3 + 1 + 2
    assert [p["page"] for p in await vectors.document_pages("doc-c")] == [1, 2]
    after = {p["page"]: p for p in await vectors.document_pages("doc-a")}
    for page, payload in before.items():
        kept = {k: v for k, v in payload.items() if k != "indexed_at"}
        assert {k: v for k, v in after[page].items() if k != "indexed_at"} == kept
    hits = await vectors.search((await indexer.embedder.embed_queries(["total"]))[0], k=3)
    assert len(hits) == 3
