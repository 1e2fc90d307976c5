"""HTTP client for the ColPali embedder service (`app/embedder`).

Binary transport (float16 bytes, `multivector_wire`) is the default; JSON float lists are kept for debugging
and for the transport benchmark. 4xx answers raise `EmbedderRejected` (do not retry: the input is bad);
connection errors, timeouts and 5xx raise `EmbedderUnavailable` (retry with backoff).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np

from app.services import multivector_wire as wire

Transport = Literal["binary", "json"]


class EmbedderError(RuntimeError):
    pass


class EmbedderUnavailable(EmbedderError):
    """Transient: the service is down, overloaded or timed out."""


class EmbedderRejected(EmbedderError):
    """Permanent: the service refused this input (bad image, too many pixels, too many items)."""


class EmbedderClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 2.0,
        transport: Transport = "binary",
        client: httpx.AsyncClient | None = None,
        max_batch: int = 16,
    ) -> None:
        if transport not in ("binary", "json"):
            raise ValueError(f"transport={transport!r}: allowed values are binary, json")
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch}: must be >= 1")
        self.transport = transport
        self.max_batch = max_batch
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> EmbedderClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def _accept(self) -> str:
        return wire.CONTENT_TYPE if self.transport == "binary" else "application/json"

    async def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.post(path, headers={"Accept": self._accept}, **kwargs)
        except httpx.TransportError as exc:
            raise EmbedderUnavailable(f"embedder {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise EmbedderUnavailable(f"embedder {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise EmbedderRejected(f"embedder {path}: HTTP {response.status_code}: {detail}")
        return response

    @staticmethod
    def _decode(response: httpx.Response) -> list[wire.Multivector]:
        if response.headers.get("content-type", "").startswith(wire.CONTENT_TYPE):
            return wire.decode(response.content)
        return wire.from_json(response.json())

    async def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One (tokens x dim) float32 array per query."""
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.max_batch):
            chunk = list(texts[start : start + self.max_batch])
            response = await self._post("/embed/queries", json={"texts": chunk})
            out += [item.vectors for item in self._decode(response)]
        return out

    async def embed_images(self, images: Sequence[bytes]) -> list[wire.Multivector]:
        """One multivector per image (JPEG/PNG bytes), each with its image-patch span for pooling."""
        out: list[wire.Multivector] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            files = [("images", (f"{start + i}.img", data, "application/octet-stream")) for i, data in enumerate(chunk)]
            response = await self._post("/embed/images", files=files)
            decoded = self._decode(response)
            if len(decoded) != len(chunk):
                raise EmbedderError(f"embedder returned {len(decoded)} embeddings for {len(chunk)} images")
            out += decoded
        return out

    async def info(self) -> dict[str, Any]:
        try:
            response = await self._client.get("/info")
        except httpx.TransportError as exc:
            raise EmbedderUnavailable(f"embedder /info: {exc}") from exc
        response.raise_for_status()
        return dict(response.json())

    async def ping(self) -> bool:
        """True when the service answers /health with the model loaded."""
        try:
            response = await self._client.get("/health")
        except httpx.TransportError:
            return False
        return response.status_code == 200
