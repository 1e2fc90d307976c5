"""The development chat stand-in (app/dev_llm.py): the official openai client gets an answer that cites the page
labels the API put in the prompt, and says it is not a model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from app.dev_llm import PREFIX, DevLLM


@pytest.fixture
def llm() -> Iterator[DevLLM]:
    server = DevLLM()
    yield server
    server.close()


def test_openai_client_gets_an_answer_citing_the_retrieved_labels(llm: DevLLM) -> None:
    client = OpenAI(api_key="dev-stand-in", base_url=llm.base_url, max_retries=0)
    prompt = "What is due?\n\n[Retrieved pages]\n- a.pdf - page 1\n- b.pdf - page 3\n\nCite pages."
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "rules"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "low"}},
                ],
            },
        ],
    )
    text = completion.choices[0].message.content or ""
    assert text.startswith(PREFIX)
    assert "[a.pdf - page 1]; [b.pdf - page 3]" in text
    assert "1 page image(s)" in text
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_no_pages_and_bad_requests(llm: DevLLM) -> None:
    client = OpenAI(api_key="x", base_url=llm.base_url, max_retries=0)
    none = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi\n\n[Retrieved pages]\n- (no pages found)\n"}]
    )
    assert "no pages were retrieved" in (none.choices[0].message.content or "")
    with pytest.raises(ValueError, match="loopback"):
        DevLLM(host="0.0.0.0")
