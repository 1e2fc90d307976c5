"""LLM calls for `POST /chat` with cost and safety controls.

- The official `openai` client, with a configurable base URL (any OpenAI-compatible gateway), its own timeout
  and bounded retries, behind the `llm` circuit breaker.
- A per-identity daily token budget in Redis shared by all replicas: each call first reserves its worst case
  (prompt estimate + max output tokens) with INCRBY, refusing with 429 when that would pass the budget, then
  settles to the real usage the API reports.
- A per-process concurrency limit: callers wait at most CHAT_QUEUE_TIMEOUT_S for a slot, then get 503.
- Moderation (CHAT_MODERATION_ENABLED; on by the staging/prod tier defaults) of the caller's text (question and
  the history it sends) before anything is sent for completion, and of the answer before it is returned:
  a flagged question is ContentRejected (422 naming the categories), a flagged answer is withheld
  (app/api/routers/chat.py). A moderation endpoint that cannot answer fails closed (503), never open.
- Prompts and answers are never logged: only their sha256 fingerprints.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openai import AsyncOpenAI
from redis.asyncio import Redis

from app.core.logging import fingerprint, get_logger
from app.core.metrics import CHAT_TOKENS
from app.core.resilience import DependencyUnavailable, Resilience

log = get_logger(__name__)


class BudgetExceeded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__("daily token budget exhausted")
        self.retry_after_s = retry_after_s


class ContentRejected(Exception):
    """Moderation flagged the caller's input (the question or the history it sent)."""

    def __init__(self, categories: list[str]) -> None:
        named = f" (categories: {', '.join(categories)})" if categories else ""
        super().__init__(f"the question was rejected by content moderation{named}")
        self.categories = categories


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


def _seconds_to_utc_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap upper-ish estimate (4 characters per token, images at the 'low' detail flat rate)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content) // 4 + 4
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += len(part.get("text", "")) // 4 + 4
                else:
                    total += 85
    return total


class TokenBudget:
    def __init__(self, redis: Redis, *, daily_tokens: int, prefix: str = "visionrag:budget") -> None:
        self._redis = redis
        self.daily_tokens = daily_tokens
        self.prefix = prefix

    def _key(self, scope: str, now: datetime) -> str:
        return f"{self.prefix}:{scope}:{now:%Y%m%d}"

    async def reserve(self, scope: str, tokens: int) -> str:
        now = datetime.now(UTC)
        key = self._key(scope, now)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, 2 * 86400)
            used, _ = await pipe.execute()
        if int(used) > self.daily_tokens:
            await self._redis.decrby(key, tokens)
            raise BudgetExceeded(_seconds_to_utc_midnight(now))
        return key

    async def settle(self, key: str, reserved: int, actual: int) -> None:
        if actual != reserved:
            await self._redis.incrby(key, actual - reserved)

    async def used(self, scope: str) -> int:
        raw = await self._redis.get(self._key(scope, datetime.now(UTC)))
        return int(raw or 0)


class ChatModel:
    def __init__(
        self,
        client: AsyncOpenAI,
        budget: TokenBudget,
        resilience: Resilience,
        *,
        model: str,
        timeout_s: float,
        max_output_tokens: int,
        max_concurrency: int,
        queue_timeout_s: float,
        moderation_enabled: bool = False,
        moderation_model: str = "omni-moderation-latest",
    ) -> None:
        self.client = client
        self.budget = budget
        self.resilience = resilience
        self.model = model
        self.timeout_s = timeout_s
        self.max_output_tokens = max_output_tokens
        self.queue_timeout_s = queue_timeout_s
        self.moderation_enabled = moderation_enabled
        self.moderation_model = moderation_model
        self._slots = asyncio.Semaphore(max_concurrency)

    async def flagged(self, texts: list[str]) -> list[str]:
        """The moderation categories flagged in any of `texts` (`["flagged"]` when none is named); [] when none
        is flagged or moderation is off. One request for all texts: the API accepts a list and answers per item."""
        inputs = [text for text in texts if text]
        if not self.moderation_enabled or not inputs:
            return []
        result = await self.resilience.call(
            "llm",
            lambda: self.client.moderations.create(model=self.moderation_model, input=inputs),
            timeout_s=self.timeout_s,
        )
        categories: set[str] = set()
        hit = False
        for item in result.results:
            if not item.flagged:
                continue
            hit = True
            # by_alias: the API's category names ("self-harm/intent"), not the client's field names.
            cats = item.categories
            raw = cats.model_dump(by_alias=True) if hasattr(cats, "model_dump") else dict(cats)
            categories.update(name for name, on in raw.items() if on is True)
        if not hit:
            return []
        return sorted(categories) or ["flagged"]

    async def moderate(self, text: str | list[str]) -> None:
        """Refuse the caller's input (ContentRejected) when moderation flags any part of it."""
        texts = [text] if isinstance(text, str) else text
        categories = await self.flagged(texts)
        if categories:
            log.warning(
                "chat_moderation_flagged", what="question", categories=categories, prompt_sha256=fingerprint(texts[0])
            )
            raise ContentRejected([c for c in categories if c != "flagged"])

    async def complete(self, scope: str, messages: list[dict[str, Any]], *, temperature: float) -> Completion:
        reserved = estimate_tokens(messages) + self.max_output_tokens
        key = await self.budget.reserve(scope, reserved)
        actual = 0
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.queue_timeout_s)
            except TimeoutError:
                raise DependencyUnavailable("llm", "too many concurrent chat requests") from None
            try:
                started = time.perf_counter()
                response = await self.resilience.call(
                    "llm",
                    lambda: self.client.chat.completions.create(
                        model=self.model,
                        messages=messages,  # type: ignore[arg-type]
                        temperature=temperature,
                        max_tokens=self.max_output_tokens,
                    ),
                    timeout_s=self.timeout_s,
                    # A completion costs money: never send it twice on our side (the client retries connects).
                    idempotent=False,
                )
            finally:
                self._slots.release()
            text = response.choices[0].message.content or "" if response.choices else ""
            usage = response.usage
            prompt_tokens = usage.prompt_tokens if usage else estimate_tokens(messages)
            completion_tokens = usage.completion_tokens if usage else len(text) // 4
            actual = prompt_tokens + completion_tokens
            CHAT_TOKENS.labels(kind="prompt").inc(prompt_tokens)
            CHAT_TOKENS.labels(kind="completion").inc(completion_tokens)
            log.info(
                "chat_completion",
                model=self.model,
                prompt_sha256=fingerprint(json.dumps(messages, default=str)),
                answer_sha256=fingerprint(text),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        finally:
            await self.budget.settle(key, reserved, actual)
