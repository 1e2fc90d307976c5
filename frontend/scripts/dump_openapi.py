"""Writes the API's OpenAPI schema (from the FastAPI app itself, not a running server) as stable JSON.

`python frontend/scripts/dump_openapi.py [OUT]` (default frontend/openapi.json); `npm run gen:api` turns it into
src/lib/api/schema.d.ts. The settings only need to build the app: nothing connects to anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.api.main import create_app
from app.api.settings import Settings

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "openapi.json"


def schema() -> dict[str, object]:
    settings = Settings(
        environment="dev",
        auth_issuer_url="https://issuer.invalid/",
        auth_audience="visionrag",
        auth_jwks_url="https://issuer.invalid/.well-known/jwks.json",
        log_json=False,
    )
    return create_app(settings).openapi()


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    out.write_text(render())
    print(f"wrote {out}")
