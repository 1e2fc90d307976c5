"""Streaming validation of `POST /index` uploads (multipart field `files`).

The body is parsed as it arrives (python-multipart's streaming parser), straight into a private temp dir, so:
- a declared Content-Length over the total cap is refused with 413 before a byte is read, and a body or a
  single file that grows past its cap is refused with 413 as soon as it does — never after reading it all;
- each file must start with the PDF magic (`%PDF-`, else 415), open with pdfium (else 422: corrupt or
  encrypted), have 1..MAX_PDF_PAGES pages (else 422) and, when clamd is configured, scan clean (else 422;
  a scanner that cannot answer gives 503);
- filenames are reduced to a safe basename.
Nothing reaches storage until every file passed; the temp dir is removed whatever happens. With `slots`
(app/api/upload_slots.py) at most UPLOAD_MAX_CONCURRENT sessions of a process hold a temp dir at once: `admit()`
waits briefly for a slot, else refuses with 503 before the body is read; the slot is freed with the temp dir.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pypdfium2 as pdfium
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.api.malware import ClamdScanner

if TYPE_CHECKING:
    from app.api.upload_slots import UploadSlots

PDF_MAGIC = b"%PDF-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MULTIPART_OVERHEAD = 64 * 1024
# pdfium is not thread-safe: one parse at a time per process (parsing only counts pages; it is quick).
_PDFIUM_LOCK = threading.Lock()


class UploadRejected(Exception):
    def __init__(self, status_code: int, detail: str, *, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.reason = reason  # metric label: oversize, type, corrupt, pages, malware, form, busy
        self.retry_after_s = retry_after_s  # sent as Retry-After (a refusal that may succeed later: busy)


@dataclass
class ReceivedFile:
    filename: str
    path: Path
    size: int = 0
    pages: int = 0


def sanitize_filename(raw: str | None, *, max_length: int = 120) -> str:
    """A basename safe for object keys, logs and Content-Disposition: no paths, controls or odd characters."""
    name = unicodedata.normalize("NFKC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" ._-")
    name = re.sub(r"\s+", " ", name)
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() != "pdf":
        stem, ext = name, "pdf"
    stem = stem[: max_length - 4].rstrip(" ._-") or "document"
    return f"{stem}.pdf"


class _Collector:
    """python-multipart callbacks writing `files` parts to disk with per-file and count caps."""

    def __init__(self, workdir: Path, *, max_file_bytes: int, max_files: int, max_fields: int = 20) -> None:
        self.workdir = workdir
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.max_fields = max_fields
        self.files: list[ReceivedFile] = []
        self.error: UploadRejected | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._current: ReceivedFile | None = None
        self._handle: IO[bytes] | None = None
        self._parts = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def _fail(self, error: UploadRejected) -> None:
        if self.error is None:
            self.error = error

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None
        self._parts += 1
        if self._parts > self.max_files + self.max_fields:
            self._fail(UploadRejected(413, "too many form parts", reason="form"))

    def on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").strip().lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        if self.error is not None:
            return
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        field = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if field != "files" or filename is None:
            return  # other fields are ignored (and not stored)
        if len(self.files) >= self.max_files:
            self._fail(UploadRejected(413, f"too many files: at most {self.max_files} per request", reason="count"))
            return
        index = len(self.files)
        path = self.workdir / f"{index:03d}.pdf"
        self._current = ReceivedFile(filename=sanitize_filename(filename.decode("utf-8", "replace")), path=path)
        self._handle = path.open("wb")
        self.files.append(self._current)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None or self._handle is None or self.error is not None:
            return
        self._current.size += end - start
        if self._current.size > self.max_file_bytes:
            self._fail(
                UploadRejected(
                    413, f"file {self._current.filename!r} exceeds {self.max_file_bytes} bytes", reason="oversize"
                )
            )
            return
        self._handle.write(data[start:end])

    def on_part_end(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._current = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _inspect_pdf(path: Path, max_pages: int) -> int:
    with path.open("rb") as handle:
        if handle.read(len(PDF_MAGIC)) != PDF_MAGIC:
            raise UploadRejected(415, "file is not a PDF", reason="type")
    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise UploadRejected(422, f"PDF cannot be opened: {exc}", reason="corrupt") from None
        try:
            pages = len(document)
        finally:
            document.close()
    if pages < 1:
        raise UploadRejected(422, "PDF has no pages", reason="corrupt")
    if pages > max_pages:
        raise UploadRejected(422, f"PDF has {pages} pages; at most {max_pages} allowed", reason="pages")
    return pages


class UploadSession:
    """One request's upload: `async with UploadSession(...) as s: files = await s.receive(...)`."""

    def __init__(
        self,
        *,
        max_file_bytes: int,
        max_files: int,
        max_pages: int,
        scanner: ClamdScanner | None = None,
        slots: UploadSlots | None = None,
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.max_pages = max_pages
        self.scanner = scanner
        self.slots = slots
        self.max_total_bytes = max_file_bytes * max_files + MULTIPART_OVERHEAD
        self._workdir: Path | None = None
        self._admitted = False

    async def __aenter__(self) -> UploadSession:
        self._workdir = Path(tempfile.mkdtemp(prefix="visionrag-upload-"))
        return self

    async def __aexit__(self, *_: object) -> None:
        try:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
        finally:
            if self._admitted and self.slots is not None:
                self._admitted = False
                self.slots.release()

    async def admit(self) -> None:
        """Take one of the process's upload slots (no slots: no cap); before `receive`, after `check_headers`."""
        if self.slots is not None and not self._admitted:
            await self.slots.acquire()
            self._admitted = True

    def check_headers(self, content_type: str | None, content_length: str | None) -> bytes:
        """Refuse by headers alone (before reading): wrong type, or a declared length over the cap."""
        ctype, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise UploadRejected(415, "expected multipart/form-data with field 'files'", reason="form")
        if content_length is not None:
            if not content_length.isdigit():
                raise UploadRejected(400, "invalid Content-Length", reason="form")
            if int(content_length) > self.max_total_bytes:
                raise UploadRejected(
                    413, f"request body {content_length} bytes exceeds {self.max_total_bytes}", reason="oversize"
                )
        return boundary

    async def receive(self, boundary: bytes, stream: AsyncIterator[bytes]) -> list[ReceivedFile]:
        assert self._workdir is not None, "use UploadSession as an async context manager"
        assert self._admitted or self.slots is None, "admit() before receive(): the body needs a slot"
        collector = _Collector(self._workdir, max_file_bytes=self.max_file_bytes, max_files=self.max_files)
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        total = 0
        try:
            async for chunk in stream:
                total += len(chunk)
                if total > self.max_total_bytes:
                    raise UploadRejected(413, f"request body exceeds {self.max_total_bytes} bytes", reason="oversize")
                parser.write(chunk)
                if collector.error is not None:
                    raise collector.error
            parser.finalize()
        except MultipartParseError:
            raise UploadRejected(400, "malformed multipart body", reason="form") from None
        finally:
            collector.close()
        if collector.error is not None:
            raise collector.error
        if not collector.files:
            raise UploadRejected(422, "no files in field 'files'", reason="form")
        return collector.files

    async def validate(self, files: list[ReceivedFile]) -> None:
        for item in files:
            item.pages = await asyncio.to_thread(_inspect_pdf, item.path, self.max_pages)
        if self.scanner is not None:
            for item in files:
                signature = await self.scanner.scan(item.path)
                if signature is not None:
                    raise UploadRejected(422, f"file {item.filename!r} rejected by malware scan", reason="malware")
