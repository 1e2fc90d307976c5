from __future__ import annotations

import io

import pytest
from PIL import Image

from app.worker.render import PdfRejected, open_pdf, render_pages
from tests.app.indexing_support import make_pdf


def test_renders_every_page_as_jpeg_at_the_requested_dpi():
    document = open_pdf(make_pdf(3, size=(144, 216)), max_pages=10)
    pages = list(render_pages(document, dpi=144, jpeg_quality=80, max_side_px=5000))
    assert [p.number for p in pages] == [1, 2, 3]
    image = Image.open(io.BytesIO(pages[0].jpeg))
    assert image.format == "JPEG" and image.size == (288, 432) == (pages[0].width, pages[0].height)


def test_skip_and_max_side():
    document = open_pdf(make_pdf(3, size=(1000, 500)), max_pages=10)
    pages = list(render_pages(document, dpi=300, jpeg_quality=80, max_side_px=800, skip=frozenset({2})))
    assert [p.number for p in pages] == [1, 3]
    assert max(pages[0].width, pages[0].height) <= 800


@pytest.mark.parametrize(
    ("data", "max_pages", "message"),
    [
        (b"%PDF-1.4 garbage", 10, "not a readable PDF"),
        (b"hello", 10, "not a readable PDF"),
        (make_pdf(4), 3, "has 4 pages; the limit is 3"),
    ],
)
def test_bad_documents_are_rejected(data, max_pages, message):
    with pytest.raises(PdfRejected, match=message):
        open_pdf(data, max_pages=max_pages)
