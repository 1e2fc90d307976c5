"""Cross-layer upload contract, app side: the largest body the edge lets through to the API's POST /index, on both
paths (the browser via the apex: CloudFront WAF -> ALB WAF -> the frontend's proxy at POST /api/proxy/index; a
client via the API host: ALB WAF), is exactly what the API accepts, and one byte more is refused with 413.

The edge side (the recorded web ACLs of every stack) is tests/infra/test_waf.py; both use
`largest_accepted_upload`, so the layers cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.api.settings import Settings
from infra.waf import PROXY_UPLOAD_PATH, UPLOAD_PATH
from stacks.engine.offline import Record
from tests.infra.test_waf import blocked_on_the_way, largest_accepted_upload, upload_requests

BOUNDARY = "contractboundary"
FRONTEND = Path(__file__).resolve().parents[3] / "frontend"
# Next.js clones (buffers in memory) the body of every request its middleware runs on, and cuts it at 10 MB
# unless experimental.middlewareClientMaxBodySize says otherwise; the route handler then sees the cut body.
# https://nextjs.org/docs/15/app/api-reference/config/next-config-js/middlewareClientMaxBodySize
NEXT_MIDDLEWARE_BODY_LIMIT = 10 * 1024 * 1024


def _body(pdf: bytes, total: int) -> bytes:
    """A multipart body of exactly `total` bytes: one PDF in `files`, padded by an (ignored) text field."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="doc.pdf"\r\n'
        f"Content-Type: application/pdf\r\n\r\n"
    ).encode() + pdf
    pad_head = f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'.encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    padding = total - len(head) - len(pad_head) - len(tail)
    assert padding >= 0
    body = head + pad_head + b"p" * padding + tail
    assert len(body) == total
    return body


@pytest.mark.parametrize(("extra", "status"), [(0, 202), (1, 413)])
async def test_largest_upload_through_the_edge_is_accepted_and_one_byte_more_is_413(
    api: Any, auth: Any, pdf_bytes: Any, records: dict[str, Record], extra: int, status: int
) -> None:
    largest = largest_accepted_upload(api.settings)
    body = _body(pdf_bytes(1), largest + extra)
    for stack in ("dev", "staging", "prod"):  # what the edge of every stack does with this very request
        for request in upload_requests(records[stack], len(body)):  # via the apex's proxy and the API host
            assert blocked_on_the_way(records[stack], request) is None, (stack, request)
    headers = {**auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = await api.client.post(UPLOAD_PATH, content=body, headers=headers)
    assert response.status_code == status, response.text


def _middleware_runs_on(path: str) -> bool:
    source = (FRONTEND / "src" / "middleware.ts").read_text()
    found = re.search(r"matcher:\s*\[(.*?)\]", source, re.S)
    assert found, "frontend/src/middleware.ts: no matcher (the middleware would run on every path)"
    return any(re.fullmatch(pattern, path) for pattern in re.findall(r'"([^"]+)"', found.group(1)))


def _middleware_body_limit() -> int:
    config = next(FRONTEND.glob("next.config.*")).read_text()
    found = re.search(r"middlewareClientMaxBodySize:\s*([0-9_]+)", config)
    return int(found.group(1).replace("_", "")) if found else NEXT_MIDDLEWARE_BODY_LIMIT


def test_the_middleware_matcher_model_is_real() -> None:
    # The model above, on paths whose answer is known: pages run the middleware, static assets do not.
    assert _middleware_runs_on("/upload") and not _middleware_runs_on("/_next/static/chunks/app.js")


def test_the_frontend_proxy_passes_the_largest_upload_uncut() -> None:
    largest = largest_accepted_upload(Settings.model_construct())
    # Best: the middleware does not run on the proxy route at all (no buffering); else its buffer must hold it.
    assert not _middleware_runs_on(PROXY_UPLOAD_PATH) or _middleware_body_limit() >= largest
