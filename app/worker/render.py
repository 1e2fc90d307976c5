"""PDF pages to JPEG bytes with pypdfium2 (PDFium: the same engine Chrome uses)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pypdfium2 as pdfium


class PdfRejected(ValueError):
    """The document cannot be indexed as given (not a PDF, encrypted, too many pages). Not retried."""


@dataclass(frozen=True)
class RenderedPage:
    number: int  # 1-based
    jpeg: bytes
    width: int
    height: int


def open_pdf(data: bytes, *, max_pages: int) -> pdfium.PdfDocument:
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise PdfRejected(f"not a readable PDF: {exc}") from None
    pages = len(document)
    if pages == 0:
        document.close()
        raise PdfRejected("the PDF has no pages")
    if pages > max_pages:
        document.close()
        raise PdfRejected(f"the PDF has {pages} pages; the limit is {max_pages}")
    return document


def render_pages(
    document: pdfium.PdfDocument,
    *,
    dpi: int,
    jpeg_quality: int,
    max_side_px: int,
    skip: frozenset[int] = frozenset(),
) -> Iterator[RenderedPage]:
    """Render each page not in `skip` (1-based numbers). PDFium is not thread-safe: call from one thread."""
    for index in range(len(document)):
        number = index + 1
        if number in skip:
            continue
        page = document[index]
        try:
            width_pt, height_pt = page.get_size()
            scale = dpi / 72
            longest = max(width_pt, height_pt) * scale
            if longest > max_side_px:
                scale *= max_side_px / longest
            image = page.render(scale=scale).to_pil().convert("RGB")
        finally:
            page.close()
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=jpeg_quality, optimize=True)
        yield RenderedPage(number=number, jpeg=buf.getvalue(), width=image.width, height=image.height)
