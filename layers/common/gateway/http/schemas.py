"""Response shapes of the contract, as pydantic models for the OpenAPI document (docs/openapi.json).

Handlers build plain dicts (services.inbox.message_view); these models only describe them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class MediaOut(BaseModel):
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    status: Literal["pending", "stored", "failed"] = "pending"
    url: str | None = Field(default=None, description="Short-lived presigned S3 GET URL once stored")
    filename: str | None = None
    caption: str | None = None
    reason: str | None = None


class NormalizedErrorOut(BaseModel):
    """A provider's error, normalized (table in docs/errors.md)."""

    code: str
    provider_code: str | None = None
    message: str
    retryable: bool


class SenderOut(BaseModel):
    kind: Literal["contact", "operator", "auto"]
    id: str | None = None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    channel_id: str | None = None
    direction: Literal["inbound", "outbound"]
    provider: Literal["twilio", "meta"]
    provider_message_id: str | None = None
    type: str
    text: str | None = None
    media: list[MediaOut] = Field(default_factory=list)
    location: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    status: str = Field(description="received (inbound); queued → sent → delivered → read, or failed (outbound)")
    error: NormalizedErrorOut | None = None
    sender: SenderOut
    created_at: str
    status_updated_at: str | None = None


class ErrorDetailOut(BaseModel):
    code: str
    message: str
    field: str | None = None
    provider_error: NormalizedErrorOut | None = None
    message_id: str | None = Field(default=None, description="The stored (failed) message, on provider errors")


class ErrorOut(BaseModel):
    error: ErrorDetailOut


def error_response_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorOut}}}
