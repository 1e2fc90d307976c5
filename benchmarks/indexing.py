"""Indexing throughput: the pipelined worker vs a sequential page-by-page loop, on the tiny ColPali model.

Both paths use the same real parts: pypdfium2 rendering, SeaweedFS (S3, SSE) uploads, the embedder service in
its own process (`python -m app.embedder`, tiny random model), Qdrant local mode. The sequential loop does
render -> upload -> embed -> pool -> upsert for one page at a time (the template's approach); the pipeline
overlaps rendering, uploads and batched embedding (app/worker/pipeline.py). Prints pages/s for each.

    .venv/bin/python benchmarks/indexing.py --pages 48
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from local_parts import embedder_process, seaweed, tiny_model  # noqa: E402

from app.services.embedder_client import EmbedderClient  # noqa: E402
from app.services.pooling import mean_pool  # noqa: E402
from app.services.storage import PageStorage, page_object_key  # noqa: E402
from app.services.vectors import PageVectors, VectorIndex, make_qdrant_client  # noqa: E402
from app.worker.pipeline import Indexer, IndexRequest, PipelineOptions  # noqa: E402
from app.worker.render import open_pdf, render_pages  # noqa: E402


def make_pdf(pages: int) -> bytes:
    import io

    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        image = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(40):
            draw.text((80, 80 + line * 40), f"page {n + 1} line {line} revenue total {n * line}", fill="black")
        draw.rectangle((100, 1400, 1100, 1650), outline="black", fill=(200, (n * 37) % 255, 120))
        images.append(image)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buf.getvalue()


async def sequential(
    storage: PageStorage, vectors: VectorIndex, embedder: EmbedderClient, pdf: bytes, doc: str, dpi: int
) -> int:
    document = open_pdf(pdf, max_pages=1000)
    count = 0
    for page in render_pages(document, dpi=dpi, jpeg_quality=85, max_side_px=3000):
        key = page_object_key(doc, page.number)
        await storage.put_bytes(key, page.jpeg, "image/jpeg")
        mv = (await embedder.embed_images([page.jpeg]))[0]
        assert mv.patch is not None
        pooled = mean_pool(mv.vectors, mv.patch)
        await vectors.upsert_pages(
            [
                PageVectors(
                    document_id=doc,
                    page=page.number,
                    original=mv.vectors,
                    rows=pooled.rows,
                    columns=pooled.columns,
                    payload={"object_key": key},
                )
            ]
        )
        count += 1
    document.close()
    return count


async def main_async(args: argparse.Namespace) -> None:
    pdf = make_pdf(args.pages)
    model = tiny_model()
    with tempfile.TemporaryDirectory() as tmp, seaweed(Path(tmp)) as s3, embedder_process(model) as url:
        storage = PageStorage(
            endpoint=s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            bucket="bench-pages",
            secure=False,
            sse="s3",
        )
        await storage.ensure_bucket()
        await storage.put_bytes("uploads/d/doc.pdf", pdf, "application/pdf")
        vectors = VectorIndex(make_qdrant_client(":memory:"), collection="pages")
        await vectors.ensure_collection()
        embedder = EmbedderClient(url, max_batch=args.batch)
        print(f"{args.pages} pages, A4 rendered at {args.dpi} dpi, tiny ColPali in its own process, SeaweedFS S3")
        results: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            t0 = time.perf_counter()
            n = await sequential(storage, vectors, embedder, pdf, f"seq-{round_}", args.dpi)
            results.setdefault("sequential", []).append(n / (time.perf_counter() - t0))
            indexer = Indexer(
                storage=storage,
                vectors=vectors,
                embedder=embedder,
                jobs=None,
                options=PipelineOptions(dpi=args.dpi, embed_batch=args.batch, depth=args.depth),
            )
            t0 = time.perf_counter()
            result = await indexer.run(
                IndexRequest(
                    job_id="b",
                    document_id=f"pipe-{round_}",
                    object_key="uploads/d/doc.pdf",
                    filename="doc.pdf",
                    owner="b",
                )
            )
            results.setdefault("pipelined", []).append(result.pages_indexed / (time.perf_counter() - t0))
        await embedder.aclose()
        seq, pipe = max(results["sequential"]), max(results["pipelined"])
        print(f"sequential loop : {seq:6.2f} pages/s (best of {args.rounds})")
        print(f"pipelined worker: {pipe:6.2f} pages/s (best of {args.rounds}; batch={args.batch}, depth={args.depth})")
        print(f"speedup         : {pipe / seq:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--dpi", type=int, default=144)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
