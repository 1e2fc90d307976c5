"""Request and response bodies (kept compatible with the template's frontend)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobAccepted(BaseModel):
    job_id: str
    jobs: list[dict[str, str]] = Field(description="one {job_id, document_id, filename} per uploaded file")


class JobView(BaseModel):
    job_id: str
    state: str
    document_id: str
    filename: str
    stage: str
    pages_done: int
    pages_total: int
    progress: float
    attempt: int
    error: str
    created_at: float
    updated_at: float


class SearchItem(BaseModel):
    image_url: str | None
    label: str
    payload: dict[str, Any]
    score: float


# Strict: the schema says boolean/integer/number, so `"ai_enabled": 0` or `"k": "5"` must be refused, not coerced
# (the typed frontend client and the contract test rely on the schema being the whole truth).
class ChatTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["user", "assistant"]
    content: str = Field(max_length=4000)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    message: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=10)
    chat_history: list[ChatTurn] = Field(default_factory=list, max_length=20)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    ai_enabled: bool = True
    # Accepted for template compatibility and ignored: the system prompt is fixed server-side.
    system_prompt: str | None = Field(default=None, max_length=4000)


class ChatResponse(BaseModel):
    text: str
    images: list[SearchItem]
    # True when moderation flagged the model's answer: `text` is then a notice, never the answer.
    withheld: bool = False


class DependencyStatus(BaseModel):
    status: Literal["ok", "down"]
    required: bool
    detail: str | None = None


class HealthView(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyStatus]


class DocumentView(BaseModel):
    document_id: str
    filename: str
    owner: str
    pages: int
    indexed_pages: int
    size_bytes: int
    sha256: str
    uploaded_at: str
    job: dict[str, Any] | None


class DocumentExport(BaseModel):
    document: DocumentView
    upload_url: str | None
    pages: list[dict[str, Any]]


class DeletedView(BaseModel):
    document_id: str
    deleted_vectors: int
    deleted_objects: int
