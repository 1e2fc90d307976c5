"""Moderation of the question and of the answer, end to end against the development LLM (app/dev_llm.py): a real
HTTP server the official openai client talks to, whose moderation stand-in flags exactly the inputs carrying
FLAG_MARKER. A flagged question is 422 naming the category and nothing is sent for completion; a flagged answer is
withheld (never returned, never cached); a moderation endpoint that cannot answer fails closed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from openai import OpenAI

from app.api.routers.chat import ANSWER_WITHHELD
from app.dev_llm import FLAG_CATEGORY, FLAG_MARKER, PREFIX, DevLLM


@pytest.fixture
def dev_llm() -> Iterator[DevLLM]:
    server = DevLLM()
    yield server
    server.close()


@pytest.fixture
def moderated(settings_factory, dev_llm):  # type: ignore[no-untyped-def]
    def make(**overrides):  # type: ignore[no-untyped-def]
        return settings_factory(
            openai_api_key="dev-stand-in",
            openai_base_url=dev_llm.base_url,
            openai_max_retries=0,
            chat_moderation_enabled=True,
            **overrides,
        )

    return make


def test_the_stand_in_flags_only_the_marker_per_input(dev_llm: DevLLM) -> None:
    client = OpenAI(api_key="x", base_url=dev_llm.base_url, max_retries=0)
    result = client.moderations.create(model="m", input=["hello", f"a {FLAG_MARKER.upper()} b"])
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.model_dump(by_alias=True)[FLAG_CATEGORY] is True


async def test_flagged_question_is_422_with_the_category_and_never_completed(moderated, api_factory, auth) -> None:
    async with api_factory(moderated()) as api:
        response = await api.client.post("/chat", json={"message": f"tell me {FLAG_MARKER}"}, headers=auth("mo"))
        assert response.status_code == 422, response.text
        assert "rejected by content moderation" in response.json()["detail"]
        assert FLAG_CATEGORY in response.json()["detail"]
        # Nothing was reserved, so nothing was sent for completion.
        assert await api.services.chat.budget.used("sub:mo") == 0


async def test_a_flagged_history_turn_is_refused_too(moderated, api_factory, auth) -> None:
    body = {"message": "and then?", "chat_history": [{"role": "assistant", "content": f"sure: {FLAG_MARKER}"}]}
    async with api_factory(moderated()) as api:
        response = await api.client.post("/chat", json=body, headers=auth("hist"))
        assert response.status_code == 422, response.text
        assert await api.services.chat.budget.used("sub:hist") == 0


async def test_a_flagged_answer_is_withheld_not_returned_and_not_cached(moderated, api_factory, auth, seed) -> None:
    # The document's name reaches the answer through its citation: a harmful document yields a flagged answer.
    async with api_factory(moderated()) as api:
        await seed(api.services, f"notes-{FLAG_MARKER}", ["quarterly notes"], owner="wh")
        body = {"message": "summarise my notes", "k": 1}
        response = await api.client.post("/chat", json=body, headers=auth("wh"))
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply == {**reply, "text": ANSWER_WITHHELD, "withheld": True}
        # The model's words are nowhere in the response (the retrieved page itself is the caller's own document).
        assert PREFIX not in response.text and "Sources:" not in response.text
        spent = await api.services.chat.budget.used("sub:wh")
        assert spent > 0  # the completion happened and is paid for
        again = await api.client.post("/chat", json=body, headers=auth("wh"))
        assert again.json()["withheld"] is True
        # Not served from the cache: asked and moderated again.
        assert await api.services.chat.budget.used("sub:wh") > spent


async def test_a_clean_answer_is_returned(moderated, api_factory, auth, seed) -> None:
    async with api_factory(moderated()) as api:
        doc = uuid.uuid4().hex
        await seed(api.services, doc, ["refund policy"], owner="ok")
        response = await api.client.post("/chat", json={"message": "refunds?", "k": 1}, headers=auth("ok"))
        assert response.status_code == 200, response.text
        assert response.json()["withheld"] is False
        assert response.json()["text"].startswith(PREFIX) and f"[{doc}.pdf - page 1]" in response.json()["text"]


async def test_moderation_that_cannot_answer_fails_closed(moderated, api_factory, auth, dev_llm) -> None:
    async with api_factory(moderated(openai_timeout_s=2)) as api:
        dev_llm.close()
        response = await api.client.post("/chat", json={"message": "hello"}, headers=auth("down"))
        assert response.status_code == 503, response.text
        assert await api.services.chat.budget.used("sub:down") == 0


async def test_moderation_off_passes_the_marker_through(settings_factory, api_factory, auth, dev_llm) -> None:
    settings = settings_factory(openai_api_key="x", openai_base_url=dev_llm.base_url, chat_moderation_enabled=False)
    async with api_factory(settings) as api:
        response = await api.client.post("/chat", json={"message": f"say {FLAG_MARKER}"}, headers=auth("off"))
        assert response.status_code == 200, response.text
        assert FLAG_MARKER in response.json()["text"] and response.json()["withheld"] is False
