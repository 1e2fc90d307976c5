"""Embedder transport: float16 binary (`application/x-visionrag-multivector`) vs JSON float lists.

Uses ColPali-shaped page embeddings (1,030 x 128) in batches, through the embedder's real response function
(`app.embedder.app._respond`) served by uvicorn over loopback HTTP and decoded by the real `EmbedderClient`
code path. Prints bytes per page, server encode time, client decode time and end-to-end request latency.

    .venv/bin/python benchmarks/embed_transport.py --batch 8 --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from local_parts import free_ports  # noqa: E402

from app.embedder.app import _respond  # noqa: E402
from app.services import multivector_wire as wire  # noqa: E402
from app.services.embedder_client import EmbedderClient  # noqa: E402
from app.services.pooling import PatchSpan  # noqa: E402


def pages(batch: int) -> list[wire.Multivector]:
    rng = np.random.default_rng(0)
    span = PatchSpan(start=0, length=1024, rows=32, cols=32)
    out = []
    for _ in range(batch):
        v = rng.standard_normal((1030, 128)).astype(np.float32)
        out.append(wire.Multivector(v / np.linalg.norm(v, axis=1, keepdims=True), span))
    return out


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


async def http_latency(items: list[wire.Multivector], transport: str, repeat: int) -> float:
    app = FastAPI()

    @app.post("/embed/images")
    async def embed(request: Request) -> Response:
        return _respond(request, items)

    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    client = EmbedderClient(f"http://127.0.0.1:{port}", transport=transport, max_batch=len(items))  # type: ignore[arg-type]
    samples = []
    try:
        await client.embed_images([b"x"] * len(items))
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = await client.embed_images([b"x"] * len(items))
            samples.append(time.perf_counter() - t0)
            assert len(out) == len(items) and out[0].vectors.shape == (1030, 128)
    finally:
        await client.aclose()
        server.should_exit = True
        thread.join(5)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    items = pages(args.batch)
    binary = wire.encode(items)
    as_json = json.dumps(wire.to_json(items)).encode()
    rows = {
        "binary float16": (
            len(binary) / args.batch,
            timed(lambda: wire.encode(items), args.repeat),
            timed(lambda: wire.decode(binary), args.repeat),
            asyncio.run(http_latency(items, "binary", args.repeat)),
        ),
        "JSON float lists": (
            len(as_json) / args.batch,
            timed(lambda: json.dumps(wire.to_json(items)).encode(), max(3, args.repeat // 4)),
            timed(lambda: wire.from_json(json.loads(as_json)), max(3, args.repeat // 4)),
            asyncio.run(http_latency(items, "json", max(3, args.repeat // 4))),
        ),
    }
    print(f"batch of {args.batch} ColPali pages (1030 x 128), median of runs")
    print(f"{'transport':<17} {'KB/page':>9} {'encode ms':>10} {'decode ms':>10} {'HTTP ms':>9}")
    for name, (size, enc, dec, http) in rows.items():
        print(f"{name:<17} {size / 1024:>9.0f} {enc:>10.1f} {dec:>10.1f} {http:>9.1f}")
    b, j = rows["binary float16"], rows["JSON float lists"]
    print(f"binary vs JSON: {j[0] / b[0]:.1f}x smaller, {j[3] / b[3]:.1f}x faster end to end")


if __name__ == "__main__":
    main()
