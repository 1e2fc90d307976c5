"""The Qdrant page index: collection schema, migrations, idempotent upserts and two-stage MaxSim search.

Each page is one point with three named multivectors (ARCHITECTURE.md):
- `original`: every ColPali token vector (~1,030 x 128). MaxSim, HNSW disabled (`m=0`), kept on disk: it
  is only read to rerank a shortlist, never scanned. Since schema 2 it also carries an int8 scalar-quantized
  copy that the rerank reads (no rescoring); the float16 vectors stay the exact reference.
- `mean_pooling_rows` / `mean_pooling_columns`: the patch grid pooled per row / column (~38 vectors). MaxSim with
  HNSW, held in RAM (optionally quantized): the first stage searches these.
The name applications use is an alias (`pages`) pointing at a versioned physical collection (`pages_v1`), so a
reindex builds `pages_v1_<stamp>` beside it and switches the alias atomically.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, models

from app.services.layout import (
    COLUMNS,
    EXACT_PARAMS,
    ORIGINAL,
    POOLED_HNSW,
    POOLED_QUANTIZATION,
    PREFETCH_EF,
    PREFETCH_LIMIT,
    QUANTIZATIONS,
    RERANK_PARAMS,
    RERANK_QUANTIZATION,
    ROWS,
    Datatype,
    Quantization,
    pooled_quantization_config,
    vectors_config,
)

SCHEMA_VERSION = 3
# Fixed namespace: point ids are uuid5(NAMESPACE, "<document_id>:<page>") everywhere (API, worker, reindex).
POINT_NAMESPACE = uuid.UUID("5b0c8a57-6f1e-4d59-9f0a-3c1d2b7e8a41")


def point_id(document_id: str, page: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{page}"))


def make_qdrant_client(
    url: str, *, api_key: str | None = None, timeout_s: float = 10.0, prefer_grpc: bool = False
) -> AsyncQdrantClient:
    """`:memory:` or a filesystem path gives Qdrant's local mode; anything with a scheme is a server."""
    if url == ":memory:":
        return AsyncQdrantClient(location=":memory:")
    if "://" not in url:
        return AsyncQdrantClient(path=url)
    return AsyncQdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout_s)), prefer_grpc=prefer_grpc)


@dataclass(frozen=True, kw_only=True)
class PageVectors:
    """One page ready to index. `payload` carries filename, object_key, owner and anything else to return."""

    document_id: str
    page: int
    original: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    document_id: str
    page: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class MigrationResult:
    alias: str
    collection: str
    from_version: int | None
    to_version: int
    created: bool


class SchemaError(RuntimeError):
    """The stored collection cannot be used by this code (newer schema, other vector size)."""


class VectorIndex:
    def __init__(
        self,
        client: AsyncQdrantClient,
        *,
        collection: str,
        dim: int = 128,
        on_disk: bool = True,
        quantization: Quantization = POOLED_QUANTIZATION,
        datatype: Datatype = "float16",
        prefetch_limit: int = PREFETCH_LIMIT,
        prefetch_ef: int = PREFETCH_EF,
        replication_factor: int = 1,
        shard_number: int = 1,
    ) -> None:
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization={quantization!r}: allowed values are {', '.join(QUANTIZATIONS)}")
        if datatype not in ("float32", "float16"):
            raise ValueError(f"datatype={datatype!r}: allowed values are float32, float16")
        if dim < 1:
            raise ValueError(f"dim={dim}: must be >= 1")
        if prefetch_limit < 1:
            raise ValueError(f"prefetch_limit={prefetch_limit}: must be >= 1")
        if prefetch_ef < prefetch_limit:
            raise ValueError(f"prefetch_ef={prefetch_ef}: must be >= prefetch_limit={prefetch_limit}")
        if not collection or "/" in collection:
            raise ValueError(f"collection={collection!r}: must be a non-empty name without '/'")
        self.client = client
        self.alias = collection
        self.dim = dim
        self.on_disk = on_disk
        self.quantization = quantization
        self.datatype = datatype
        self.prefetch_limit = prefetch_limit
        self.prefetch_ef = prefetch_ef
        self.replication_factor = replication_factor
        self.shard_number = shard_number

    # --- schema -----------------------------------------------------------------------------------------------
    def _vectors_config(self) -> dict[str, models.VectorParams]:
        return vectors_config(
            dim=self.dim, on_disk=self.on_disk, quantization=self.quantization, datatype=self.datatype
        )

    def metadata(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "dim": self.dim, "app": "visionrag"}

    async def _create_payload_indexes(self, name: str) -> None:
        keyword = models.PayloadSchemaType.KEYWORD
        integer = models.PayloadSchemaType.INTEGER
        for field_name, schema in (
            ("document_id", keyword),
            ("owner", keyword),
            ("page", integer),
            ("schema_version", integer),
        ):
            with warnings.catch_warnings():
                # Local mode (tests, `make local`) warns that indexes are no-ops there; servers build them.
                warnings.simplefilter("ignore", UserWarning)
                await self.client.create_payload_index(name, field_name=field_name, field_schema=schema, wait=True)

    async def create_physical(self, name: str) -> str:
        """Create a physical collection with the current schema (not aliased yet)."""
        await self.client.create_collection(
            name,
            vectors_config=self._vectors_config(),
            on_disk_payload=True,
            replication_factor=self.replication_factor,
            shard_number=self.shard_number,
            metadata=self.metadata(),
        )
        await self._create_payload_indexes(name)
        return name

    async def aliases(self) -> dict[str, str]:
        response = await self.client.get_aliases()
        return {a.alias_name: a.collection_name for a in response.aliases}

    async def resolve(self) -> str | None:
        """The physical collection the alias points at (or a legacy un-aliased collection), None if absent."""
        target = (await self.aliases()).get(self.alias)
        if target:
            return target
        if await self.client.collection_exists(self.alias):
            return self.alias
        return None

    async def stored_version(self, name: str) -> int:
        info = await self.client.get_collection(name)
        meta = info.config.metadata or {}
        return int(meta.get("schema_version", 0))

    async def collection_version(self) -> int | None:
        """Schema version of the collection behind the alias; None when nothing exists yet."""
        target = await self.resolve()
        return None if target is None else await self.stored_version(target)

    async def _check_vectors(self, name: str) -> None:
        info = await self.client.get_collection(name)
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict) or not {ORIGINAL, ROWS, COLUMNS} <= set(vectors):
            have = sorted(vectors) if isinstance(vectors, dict) else "a single unnamed vector"
            raise SchemaError(
                f"collection {name!r} has vectors {have}; expected {ORIGINAL}, {ROWS}, {COLUMNS}: reindex it"
            )
        for vec_name in (ORIGINAL, ROWS, COLUMNS):
            size = vectors[vec_name].size
            if size != self.dim:
                raise SchemaError(f"collection {name!r} vector {vec_name!r} has size {size}, expected {self.dim}")

    async def _migrate_0_to_1(self, name: str) -> None:
        # Version 0 is the template's collection: same vectors, no payload indexes, no metadata.
        await self._create_payload_indexes(name)

    async def _migrate_1_to_2(self, name: str) -> None:
        # Adds the int8 copy of `original` the rerank reads; the server builds it in the background and searches
        # fall back to float16 for segments not yet re-optimized, so the migration needs no downtime.
        await self.client.update_collection(
            name, vectors_config={ORIGINAL: models.VectorParamsDiff(quantization_config=RERANK_QUANTIZATION)}
        )

    async def _migrate_2_to_3(self, name: str) -> None:
        # The pooled vectors get the denser graph and their quantized copy (layout.POOLED_HNSW, the configured
        # quantization). Qdrant rebuilds the pooled indexes in the background; until a segment is re-optimized
        # its old graph keeps serving, so the migration needs no downtime (recall returns to the measured figure
        # once the optimizer is done: GET /collections/<name> status green).
        quant = pooled_quantization_config(self.quantization)
        diff = models.VectorParamsDiff(
            hnsw_config=POOLED_HNSW, quantization_config=quant if quant is not None else models.Disabled.DISABLED
        )
        await self.client.update_collection(name, vectors_config={ROWS: diff, COLUMNS: diff})

    def _migrations(self) -> dict[int, Callable[[str], Coroutine[Any, Any, None]]]:
        return {0: self._migrate_0_to_1, 1: self._migrate_1_to_2, 2: self._migrate_2_to_3}

    async def ensure_collection(self) -> MigrationResult:
        """Create the collection and alias, or upgrade an older schema in place. Safe to run repeatedly."""
        target = await self.resolve()
        if target is None:
            physical = f"{self.alias}_v{SCHEMA_VERSION}"
            if not await self.client.collection_exists(physical):
                await self.create_physical(physical)
            await self.switch_alias(physical)
            return MigrationResult(self.alias, physical, None, SCHEMA_VERSION, True)
        await self._check_vectors(target)
        version = await self.stored_version(target)
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"collection {target!r} has schema_version {version}, newer than this code ({SCHEMA_VERSION}); "
                "deploy the newer release or restore an older snapshot"
            )
        start = version
        migrations = self._migrations()
        while version < SCHEMA_VERSION:
            await migrations[version](target)
            version += 1
        if start != SCHEMA_VERSION:
            await self.client.update_collection(target, metadata=self.metadata())
        return MigrationResult(self.alias, target, start, SCHEMA_VERSION, False)

    async def switch_alias(self, physical: str) -> str | None:
        """Point the alias at `physical` in one atomic operation; returns the previous target."""
        previous = (await self.aliases()).get(self.alias)
        operations: list[models.CreateAliasOperation | models.DeleteAliasOperation] = []
        if previous:
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=physical, alias_name=self.alias)
            )
        )
        await self.client.update_collection_aliases(change_aliases_operations=operations)
        return previous

    async def new_version_name(self) -> str:
        return f"{self.alias}_v{SCHEMA_VERSION}_{int(time.time() * 1000)}"

    # --- writes -------------------------------------------------------------------------------------------------
    def _point(self, page: PageVectors) -> models.PointStruct:
        for name, array in ((ORIGINAL, page.original), (ROWS, page.rows), (COLUMNS, page.columns)):
            if array.ndim != 2 or array.shape[1] != self.dim or array.shape[0] == 0:
                raise ValueError(
                    f"page {page.document_id}:{page.page} vector {name!r} has shape {array.shape}, "
                    f"expected (n>0, {self.dim})"
                )
        payload = {
            **page.payload,
            "document_id": page.document_id,
            "page": page.page,
            "schema_version": SCHEMA_VERSION,
            "indexed_at": datetime.now(UTC).isoformat(),
        }
        return models.PointStruct(
            id=point_id(page.document_id, page.page),
            vector={
                ORIGINAL: page.original.astype(np.float32).tolist(),
                ROWS: page.rows.astype(np.float32).tolist(),
                COLUMNS: page.columns.astype(np.float32).tolist(),
            },
            payload=payload,
        )

    async def upsert_pages(self, pages: Sequence[PageVectors], *, collection: str | None = None) -> int:
        """Upsert by deterministic id: re-running a page overwrites it instead of adding a duplicate."""
        if not pages:
            return 0
        points = [self._point(p) for p in pages]
        await self.client.upsert(collection or self.alias, points=points, wait=True)
        return len(points)

    @staticmethod
    def _filter(document_id: str | None, owner: str | None) -> models.Filter | None:
        must: list[models.Condition] = []
        if document_id is not None:
            must.append(models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id)))
        if owner is not None:
            must.append(models.FieldCondition(key="owner", match=models.MatchValue(value=owner)))
        return models.Filter(must=must) if must else None

    async def delete_document(self, document_id: str) -> int:
        flt = self._filter(document_id, None)
        assert flt is not None
        counted = await self.client.count(self.alias, count_filter=flt, exact=True)
        if counted.count:
            await self.client.delete(self.alias, points_selector=models.FilterSelector(filter=flt), wait=True)
        return counted.count

    # --- reads --------------------------------------------------------------------------------------------------
    @staticmethod
    def _as_query(query_vectors: np.ndarray | Sequence[Sequence[float]]) -> list[list[float]]:
        array = np.asarray(query_vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] == 0:
            raise ValueError(f"query must be a non-empty (tokens x dim) multivector, got shape {array.shape}")
        return array.tolist()

    def _hits(self, points: Sequence[models.ScoredPoint]) -> list[SearchHit]:
        hits = []
        for p in points:
            payload = dict(p.payload or {})
            hits.append(
                SearchHit(
                    id=str(p.id),
                    score=float(p.score),
                    document_id=str(payload.get("document_id", "")),
                    page=int(payload.get("page", 0)),
                    payload=payload,
                )
            )
        return hits

    async def search(
        self,
        query_vectors: np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        document_id: str | None = None,
        owner: str | None = None,
    ) -> list[SearchHit]:
        """Two-stage: HNSW over the pooled rows and columns picks candidates, `original` reranks them."""
        if not 1 <= k <= 100:
            raise ValueError(f"k={k}: allowed 1..100")
        query = self._as_query(query_vectors)
        flt = self._filter(document_id, owner)
        limit = max(self.prefetch_limit, k)
        pooled = models.SearchParams(hnsw_ef=max(self.prefetch_ef, limit))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # local mode is always exact and says so
            response = await self.client.query_points(
                self.alias,
                prefetch=[
                    models.Prefetch(query=query, using=ROWS, limit=limit, filter=flt, params=pooled),
                    models.Prefetch(query=query, using=COLUMNS, limit=limit, filter=flt, params=pooled),
                ],
                query=query,
                using=ORIGINAL,
                query_filter=flt,
                limit=k,
                with_payload=True,
                search_params=RERANK_PARAMS,
            )
        return self._hits(response.points)

    async def search_exhaustive(
        self,
        query_vectors: np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        document_id: str | None = None,
        owner: str | None = None,
    ) -> list[SearchHit]:
        """MaxSim on `original` over every page: the reference ranking the two-stage search approximates."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # local mode is always exact and says so
            response = await self.client.query_points(
                self.alias,
                query=self._as_query(query_vectors),
                using=ORIGINAL,
                query_filter=self._filter(document_id, owner),
                limit=k,
                with_payload=True,
                search_params=EXACT_PARAMS,
            )
        return self._hits(response.points)

    async def document_pages(self, document_id: str) -> list[dict[str, Any]]:
        """Payloads of every indexed page of one document, ordered by page."""
        return sorted(
            [payload async for payload, _ in self.iter_points(document_id=document_id)],
            key=lambda payload: int(payload.get("page", 0)),
        )

    async def iter_points(
        self,
        *,
        document_id: str | None = None,
        collection: str | None = None,
        batch: int = 64,
        with_vectors: bool = False,
        owner: str | None = None,
    ) -> Any:
        """Yield (payload, vectors) for every point (optionally one document's, or one owner's) in scroll order."""
        offset: Any = None
        while True:
            points, offset = await self.client.scroll(
                collection or self.alias,
                scroll_filter=self._filter(document_id, owner),
                limit=batch,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            for p in points:
                yield dict(p.payload or {}), p.vector
            if offset is None:
                return

    async def count(self, *, collection: str | None = None, document_id: str | None = None) -> int:
        result = await self.client.count(
            collection or self.alias, count_filter=self._filter(document_id, None), exact=True
        )
        return result.count

    async def ping(self) -> bool:
        """True when Qdrant answers and the collection exists; False when it answers without it; raises if down."""
        return await self.resolve() is not None
