"""A DEVELOPMENT-ONLY stand-in for an OpenAI-compatible chat endpoint, on loopback, for `make local` and e2e.

Without an OPENAI_API_KEY `POST /chat` answers 503, so a local run could never show a chat turn end to end. This
serves `POST /v1/chat/completions` (what the official `openai` client calls with OPENAI_BASE_URL pointing here)
with a deterministic answer that cites the page labels the API put in the prompt, and real-looking usage figures
so the API's token budget path runs too. It states plainly that it is not a model.

It also serves `POST /v1/moderations` (what `client.moderations.create` calls), so the API's moderation of the
question and of the answer (app/api/llm.py) runs end to end locally: it is not a classifier either, it flags exactly
the inputs that contain FLAG_MARKER (category `harassment`), deterministically, so tests and demos can trigger it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STAND_IN_MODEL = "visionrag-dev-stand-in"
PREFIX = "[development stand-in, not a language model]"
# The moderation stand-in flags any input containing this marker (case-insensitive), and nothing else.
FLAG_MARKER = "dev-moderation-flag"
FLAG_CATEGORY = "harassment"


def _user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def answer(messages: list[dict[str, Any]]) -> str:
    """Cites every label listed under the prompt's `[Retrieved pages]` block (app/api/routers/chat.py)."""
    text = _user_text(messages)
    question, _, rest = text.partition("[Retrieved pages]")
    labels = [line[2:].strip() for line in rest.splitlines() if line.startswith("- ") and "(no pages" not in line]
    images = sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    )
    cited = "; ".join(f"[{label}]" for label in labels) if labels else "no pages were retrieved"
    return f"{PREFIX} You asked: {question.strip()[:200]!r}. I was shown {images} page image(s). Sources: {cited}."


def moderation(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI moderations response: one result per input string (a string input is a list of one)."""
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    results = []
    for item in inputs:
        text = item if isinstance(item, str) else json.dumps(item)
        flagged = FLAG_MARKER in text.lower()
        results.append(
            {
                "flagged": flagged,
                "categories": {FLAG_CATEGORY: flagged, "violence": False},
                "category_scores": {FLAG_CATEGORY: 0.99 if flagged else 0.0, "violence": 0.0},
            }
        )
    return {"id": f"modr-dev-{time.monotonic_ns()}", "model": body.get("model", STAND_IN_MODEL), "results": results}


class DevLLM:
    def __init__(self, host: str = "127.0.0.1") -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"DevLLM host {host!r}: development only, loopback hosts only")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = self.path.rstrip("/")
                if path not in ("/v1/chat/completions", "/v1/moderations"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    if path == "/v1/moderations":
                        if "input" not in body:
                            raise KeyError("input")
                        self._json(200, moderation(body))
                        return
                    messages = body["messages"]
                except (ValueError, KeyError, TypeError):
                    self._json(400, {"error": {"message": "body must be JSON with messages (or input)"}})
                    return
                text = answer(messages)
                prompt_tokens = len(json.dumps(messages)) // 4
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-dev-{time.monotonic_ns()}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", STAND_IN_MODEL),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": len(text) // 4,
                            "total_tokens": prompt_tokens + len(text) // 4,
                        },
                    },
                )

            def _json(self, status: int, document: dict[str, Any]) -> None:
                raw = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
