"""FastAPI app of the embedder: GET /health, GET /info, POST /embed/queries, POST /embed/images.

Vectors go back as float16 bytes (`application/x-visionrag-multivector`) when the client accepts them, else
as JSON float lists. Images arrive as multipart files and are decoded defensively before the model sees them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from app.embedder.batcher import MicroBatcher, Overloaded
from app.embedder.images import ImageRejected, decode_image
from app.embedder.settings import EmbedderSettings
from app.services import multivector_wire as wire

log = logging.getLogger(__name__)


class Encoder(Protocol):
    info: Any

    def embed_images(self, images: Sequence[Image.Image]) -> list[wire.Multivector]: ...

    def embed_queries(self, texts: Sequence[str]) -> list[wire.Multivector]: ...


class QueriesRequest(BaseModel):
    texts: list[str] = Field(min_length=1)


def load_encoder(settings: EmbedderSettings) -> Encoder:
    from app.embedder.encoder import ColPaliEncoder

    return ColPaliEncoder(
        settings.model,
        device=settings.device,
        dtype=settings.dtype,
        local_files_only=settings.local_files_only,
        revision=settings.model_revision,
    )


def _respond(request: Request, items: Sequence[wire.Multivector]) -> Response:
    accept = request.headers.get("accept", "")
    if wire.CONTENT_TYPE in accept:
        return Response(content=wire.encode(items), media_type=wire.CONTENT_TYPE)
    return JSONResponse(wire.to_json(items))


def create_app(settings: EmbedderSettings, encoder: Encoder | None = None) -> FastAPI:
    state: dict[str, Any] = {"encoder": encoder, "error": None}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state["encoder"] is None:
            try:
                state["encoder"] = await asyncio.to_thread(load_encoder, settings)
            except Exception as exc:
                # Stay up and report 503 on /health: the probe shows why instead of a crash loop with no log.
                log.exception("model load failed")
                state["error"] = f"{type(exc).__name__}: {exc}"
        enc = state["encoder"]
        batchers: list[MicroBatcher[Any, Any]] = []
        if enc is not None:
            for name, run in (("images", enc.embed_images), ("queries", enc.embed_queries)):
                state[name] = MicroBatcher(
                    run,
                    max_batch=settings.max_batch_size,
                    max_wait_s=settings.max_wait_ms / 1000,
                    max_queue=settings.max_queue,
                    name=name,
                )
            batchers = [state["images"], state["queries"]]
            for b in batchers:
                b.start()
        yield
        for b in batchers:
            await b.stop()

    app = FastAPI(title="visionrag embedder", lifespan=lifespan, docs_url=None, redoc_url=None)

    def batcher(name: str) -> MicroBatcher[Any, wire.Multivector]:
        found = state.get(name)
        if found is None:
            raise HTTPException(503, "model not loaded")
        return found  # type: ignore[no-any-return]

    @app.get("/health")
    async def health() -> JSONResponse:
        if state["encoder"] is None:
            return JSONResponse({"status": "loading" if state["error"] is None else "failed"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/info")
    async def info() -> dict[str, Any]:
        enc = state["encoder"]
        if enc is None:
            raise HTTPException(503, "model not loaded")
        data = asdict(enc.info)
        data.update(max_batch_size=settings.max_batch_size, max_wait_ms=settings.max_wait_ms)
        return data

    @app.post("/embed/queries")
    async def embed_queries(body: QueriesRequest, request: Request) -> Response:
        if len(body.texts) > settings.max_queries_per_request:
            raise HTTPException(413, f"{len(body.texts)} queries; the limit is {settings.max_queries_per_request}")
        too_long = [i for i, t in enumerate(body.texts) if len(t) > settings.max_query_chars]
        if too_long:
            raise HTTPException(413, f"queries {too_long} exceed {settings.max_query_chars} characters")
        if any(not t.strip() for t in body.texts):
            raise HTTPException(422, "queries must not be blank")
        try:
            items = await batcher("queries").submit(body.texts)
        except Overloaded as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        return _respond(request, items)

    @app.post("/embed/images")
    async def embed_images(request: Request, images: Annotated[list[UploadFile], File()]) -> Response:
        if len(images) > settings.max_images_per_request:
            raise HTTPException(413, f"{len(images)} images; the limit is {settings.max_images_per_request}")
        decoded = []
        for n, upload in enumerate(images):
            data = await upload.read(settings.max_image_bytes + 1)
            try:
                decoded.append(
                    await asyncio.to_thread(
                        decode_image,
                        data,
                        max_bytes=settings.max_image_bytes,
                        max_pixels=settings.max_image_pixels,
                        formats=settings.image_formats,
                        name=f"images[{n}]",
                    )
                )
            except ImageRejected as exc:
                raise HTTPException(exc.status, str(exc)) from None
        try:
            items = await batcher("images").submit(decoded)
        except Overloaded as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        return _respond(request, items)

    return app
