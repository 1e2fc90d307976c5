"""The frontend's committed OpenAPI schema (frontend/openapi.json, the source of its generated TypeScript client)
is exactly what the API serves today: an API change that is not regenerated fails here, not in a browser."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "frontend" / "scripts" / "dump_openapi.py"
COMMITTED = ROOT / "frontend" / "openapi.json"
FIX = "run `.venv/bin/python frontend/scripts/dump_openapi.py && (cd frontend && npm run gen:api)`"


def _dump_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dump_openapi", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_matches_the_app() -> None:
    current = _dump_module().render()
    committed = COMMITTED.read_text()
    assert json.loads(committed) == json.loads(current), f"frontend/openapi.json is stale: {FIX}"
    assert committed == current, f"frontend/openapi.json is not in canonical form: {FIX}"


def test_the_schema_has_what_the_frontend_calls() -> None:
    paths = json.loads(COMMITTED.read_text())["paths"]
    for path, method in [
        ("/index", "post"),
        ("/jobs/{job_id}", "get"),
        ("/progress/stream/{job_id}", "get"),
        ("/search", "get"),
        ("/chat", "post"),
        ("/documents/{document_id}", "get"),
        ("/documents/{document_id}", "delete"),
        ("/documents/{document_id}/export", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is missing from the API schema"
