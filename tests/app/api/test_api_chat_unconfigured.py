"""A stack without `visionrag:llmApiKey` (it is optional): the api starts, is ready, and only chat says why not.

No key means no `openai_api_key` settings file (infra/workloads mounts it only when the secret exists), so the api
builds no chat model: POST /chat answers 503 naming the missing key, retrieval-only chat and every other route
work, and /health stays 200 (the LLM is a feature, not a readiness dependency).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any


async def test_chat_without_llm_key_is_503_with_the_reason(
    settings_factory: Callable[..., Any], api_factory: Any, auth: Any, seed: Any, openai_stub: Any
) -> None:
    async with api_factory(settings_factory(openai_api_key=None)) as api:
        assert api.services.chat is None
        doc = uuid.uuid4().hex
        await seed(api.services, doc, ["refund policy"])
        before = len(openai_stub.requests)

        response = await api.client.post("/chat", json={"message": "refund?"}, headers=auth("carol"))
        assert response.status_code == 503
        assert response.json()["detail"].startswith("chat is not configured: no LLM API key")

        retrieval_only = await api.client.post(
            "/chat", json={"message": "refund?", "ai_enabled": False}, headers=auth("carol")
        )
        assert retrieval_only.status_code == 200, retrieval_only.text
        assert retrieval_only.json()["images"]
        assert len(openai_stub.requests) == before  # nothing was sent anywhere

        health = await api.client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
