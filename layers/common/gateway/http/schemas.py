"""Response shapes of the contract, as pydantic models for the OpenAPI document (docs/openapi.json).

Handlers build plain dicts (services.inbox.message_view); these models only describe them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Described(BaseModel):
    # Only the OpenAPI document builds these (handlers return dicts): not at a Lambda's init (~2 ms of cold start).
    model_config = ConfigDict(defer_build=True)


class MediaOut(_Described):
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    status: Literal["pending", "stored", "failed"] = "pending"
    url: str | None = Field(default=None, description="Short-lived presigned S3 GET URL once stored")
    filename: str | None = None
    caption: str | None = None
    reason: str | None = None


class NormalizedErrorOut(_Described):
    """A provider's error, normalized (table in docs/errors.md)."""

    code: str
    provider_code: str | None = None
    message: str
    retryable: bool


class SenderOut(_Described):
    kind: Literal["contact", "operator", "auto", "business_app"] = Field(
        description="business_app: written from the WhatsApp Business app on a coexistence number (an echo)"
    )
    id: str | None = Field(default=None, description="contact: the contact's id; operator: the JWT sub; auto: the rule")
    name: str | None = Field(default=None, description="In a group conversation: the member's profile name")


class MessageOut(_Described):
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
    created_at: str = Field(description="When it happened: the provider's time when sane, else when it arrived")
    received_at: str | None = Field(default=None, description="When the gateway received it (inbound, echoes)")
    edited_at: str | None = Field(default=None, description="Set when the author edited it (text replaced)")
    deleted_at: str | None = Field(default=None, description="Set when the author deleted it (text null, no media)")
    status_updated_at: str | None = None


class ErrorDetailOut(_Described):
    code: str
    message: str
    field: str | None = None
    provider_error: NormalizedErrorOut | None = None
    message_id: str | None = Field(default=None, description="The stored (failed) message, on provider errors")


class ErrorOut(_Described):
    error: ErrorDetailOut


def error_response_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorOut}}}


class MessagePageOut(_Described):
    items: list[MessageOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null on the last page")


class ContactOut(_Described):
    """Who the conversation is with: a phone number, a WhatsApp business-scoped user id (BSUID), or both. All null
    in a group conversation."""

    id: str | None = Field(description="The contact's id (its record holds the phone and/or BSUID)")
    phone: str | None = Field(description="E.164; null for a user who shares no phone number (a username)")
    wa_user_id: str | None = Field(description="WhatsApp business-scoped user id, e.g. US.13491208655302741918")
    username: str | None = Field(description="WhatsApp username, without @")
    name: str | None


class ConversationOut(_Described):
    id: str
    channel_id: str | None
    provider: Literal["twilio", "meta"] | None
    kind: Literal["direct", "group"] = "direct"
    group_id: str | None = Field(default=None, description="The WhatsApp group (kind=group)")
    contact: ContactOut
    last_message_at: str | None
    last_inbound_at: str | None
    last_message_preview: str | None
    unread_count: int
    bot_mode: Literal["on", "shadow", "off"] | None
    operator_lock_until: str | None
    location_id: str | None
    created_at: str | None


class ConversationPageOut(_Described):
    items: list[ConversationOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class ChannelOut(_Described):
    """A channel; secrets are never returned, only hints under ``credentials``. Twilio channels carry
    ``status_callback_url``, ``account_sid``, ``messaging_service_sid``; Meta channels ``phone_number_id``,
    ``business_account_id``, ``verify_token``, ``webhook_verified_at``."""

    id: str
    tenant_id: str
    provider: Literal["twilio", "meta"]
    name: str
    phone_number: str
    status: Literal["active", "disabled"]
    location_id: str | None
    created_at: str
    updated_at: str | None
    credentials: dict[str, str] = Field(description='Redacted hints such as "••••a1b2", never the secrets')
    auto_reply: dict[str, Any] | None
    webhook_url: str
    status_callback_url: str | None = None
    account_sid: str | None = None
    messaging_service_sid: str | None = None
    phone_number_id: str | None = None
    business_account_id: str | None = None
    verify_token: str | None = None
    webhook_verified_at: str | None = None


class ChannelListOut(_Described):
    items: list[ChannelOut]


class ChannelCheckOut(_Described):
    channel_id: str
    provider: Literal["twilio", "meta"]
    ok: bool
    checked_at: str
    details: dict[str, Any] = Field(description="What the provider says about the number (name, quality, limits...)")


def json_response_doc(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}
