"""`GET /search?q=&k=`: embed the query, two-stage search in Qdrant, presigned page URLs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.api.auth import Principal
from app.api.container import AppServices
from app.api.deps import PROTECTED, CurrentUser, ServicesDep, limit_search
from app.api.responses import protected
from app.api.schemas import SearchItem
from app.core.metrics import SEARCH_REQUESTS

router = APIRouter(tags=["search"], dependencies=PROTECTED)


def label_for(payload: dict[str, Any]) -> str:
    return f"{payload.get('filename', 'document')} - page {payload.get('page', '?')}"


async def retrieve(services: AppServices, user: Principal, q: str, k: int) -> list[dict[str, Any]]:
    """Hits as cacheable dicts (object keys, never presigned URLs: those expire before the cache entry)."""
    settings = services.settings
    owner = user.sub if settings.search_own_documents_only else None
    version = await services.collection_version()
    key = services.cache.key("search", scope=user.scope, version=version, query=q, k=k, owner=owner)
    cached = await services.cache.get("search", key)
    if cached is not None:
        SEARCH_REQUESTS.labels(outcome="cache_hit").inc()
        return list(cached)
    vectors = await services.resilience.call(
        "embedder", lambda: services.embedder.embed_queries([q]), timeout_s=settings.embedder_timeout_s
    )
    hits = await services.resilience.call(
        "qdrant",
        lambda: services.vectors.search(vectors[0], k=k, owner=owner),
        timeout_s=settings.qdrant_timeout_s,
    )
    results = [
        {
            "object_key": hit.payload.get("object_key") or hit.payload.get("image_key"),
            "payload": hit.payload,
            "score": hit.score,
        }
        for hit in hits
    ]
    await services.cache.set(key, results)
    SEARCH_REQUESTS.labels(outcome="ok").inc()
    return results


def present(services: AppServices, results: list[dict[str, Any]]) -> list[SearchItem]:
    items = []
    for result in results:
        payload = {k: v for k, v in result["payload"].items() if k not in {"owner"}}
        key = result.get("object_key")
        url = services.storage.presign_get(key) if isinstance(key, str) and key else None
        items.append(SearchItem(image_url=url, label=label_for(payload), payload=payload, score=result["score"]))
    return items


@router.get(
    "/search",
    response_model=list[SearchItem],
    dependencies=[Depends(limit_search)],
    responses=protected(422, _429="rate limit, or the tenant's daily search quota exceeded"),
)
async def search(
    user: CurrentUser,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=512, description="the question")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[SearchItem]:
    return present(services, await retrieve(services, user, q, k))
