"""Binary transport for batches of multivectors between the embedder and its clients.

A ColPali page is ~1,030 x 128 floats: as a JSON float list that is ~2.5 MB of text to print and parse per
page; as float16 bytes it is 264 KB and decodes with one `np.frombuffer`. `benchmarks/embed_transport.py`
measures both. Layout: b"VRMV", a version byte, a big-endian uint32 header length, a JSON header, then each
item's tokens x dim little-endian float16 values back to back.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.services.pooling import PatchSpan

CONTENT_TYPE = "application/x-visionrag-multivector"
MAGIC = b"VRMV"
VERSION = 1
_DTYPE = np.dtype("<f2")
_PREFIX = struct.Struct(">4sBI")
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class Multivector:
    vectors: np.ndarray
    patch: PatchSpan | None = None


def _span_dict(span: PatchSpan | None) -> dict[str, int] | None:
    if span is None:
        return None
    return {"start": span.start, "length": span.length, "rows": span.rows, "cols": span.cols}


def _span(raw: object) -> PatchSpan | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError(f"patch span must be an object, got {type(raw).__name__}")
    return PatchSpan(start=int(raw["start"]), length=int(raw["length"]), rows=int(raw["rows"]), cols=int(raw["cols"]))


def encode(items: Sequence[Multivector]) -> bytes:
    dims = {item.vectors.shape[1] for item in items if item.vectors.ndim == 2}
    if any(item.vectors.ndim != 2 for item in items) or len(dims) > 1:
        raise ValueError("every multivector must be 2-D with the same dim")
    header = {
        "dtype": "float16",
        "dim": dims.pop() if dims else 0,
        "items": [{"tokens": int(i.vectors.shape[0]), "patch": _span_dict(i.patch)} for i in items],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    body = b"".join(np.ascontiguousarray(i.vectors, dtype=_DTYPE).tobytes() for i in items)
    return _PREFIX.pack(MAGIC, VERSION, len(head)) + head + body


def decode(data: bytes) -> list[Multivector]:
    if len(data) < _PREFIX.size:
        raise ValueError("multivector payload is truncated (no prefix)")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"not a multivector payload (magic={magic!r}, version={version})")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(data):
        raise ValueError(f"multivector header length {head_len} is invalid for {len(data)} bytes")
    header = json.loads(data[_PREFIX.size : _PREFIX.size + head_len])
    dim = int(header["dim"])
    body = memoryview(data)[_PREFIX.size + head_len :]
    expected = sum(int(i["tokens"]) for i in header["items"]) * dim * _DTYPE.itemsize
    if len(body) != expected:
        raise ValueError(f"multivector body has {len(body)} bytes, header describes {expected}")
    out: list[Multivector] = []
    offset = 0
    for item in header["items"]:
        count = int(item["tokens"]) * dim
        array = np.frombuffer(body, dtype=_DTYPE, count=count, offset=offset).reshape(-1, dim)
        offset += count * _DTYPE.itemsize
        out.append(Multivector(vectors=array.astype(np.float32), patch=_span(item.get("patch"))))
    return out


def to_json(items: Sequence[Multivector]) -> dict[str, object]:
    return {
        "embeddings": [np.asarray(i.vectors, dtype=np.float32).tolist() for i in items],
        "patch_spans": [_span_dict(i.patch) for i in items],
    }


def from_json(body: dict[str, object]) -> list[Multivector]:
    embeddings = body.get("embeddings")
    spans = body.get("patch_spans") or []
    if not isinstance(embeddings, list) or not isinstance(spans, list):
        raise ValueError("JSON multivector body needs an 'embeddings' list")
    spans = spans or [None] * len(embeddings)
    if len(spans) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(spans)} patch spans")
    return [
        Multivector(vectors=np.asarray(e, dtype=np.float32), patch=_span(s))
        for e, s in zip(embeddings, spans, strict=True)
    ]
