"""Outbound messages: what the tenant asked to send, provider-neutral, and what the provider answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FREE_FORM_TYPES = frozenset({"text", "image", "document", "audio", "video", "reaction"})
MEDIA_TYPES = frozenset({"image", "document", "audio", "video"})
# Types that create a message in the conversation (``read`` only marks an inbound message as read).
MESSAGE_TYPES = FREE_FORM_TYPES | {"template"}


@dataclass(frozen=True)
class Template:
    """A template in either provider's terms: Meta ``name``/``language``/``components``, Twilio ``content_sid``
    + ``variables`` (Content API). The adapter refuses the form that is not its own."""

    name: str | None = None
    language: str | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    content_sid: str | None = None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def is_twilio(self) -> bool:
        return self.content_sid is not None

    def as_content(self) -> dict[str, Any]:
        if self.is_twilio:
            return {"content_sid": self.content_sid, "variables": dict(self.variables)}
        return {"name": self.name, "language": self.language, "components": list(self.components)}


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a send goes to: a contact by phone number or by BSUID (a user who shares no phone number), or a
    WhatsApp group. A phone, when known, wins (Meta does the same when both are given)."""

    phone: str | None = None
    wa_user_id: str | None = None
    group_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.phone or self.wa_user_id or self.group_id):
            raise ValueError("a recipient needs a phone number, a WhatsApp user id or a group id")


@dataclass(frozen=True)
class Outbound:
    """One send request. ``target_provider_message_id`` is the provider id of the message a reaction or a read
    receipt is about (resolved from the conversation by the service)."""

    type: str
    text: str | None = None
    preview_url: bool = False
    media_url: str | None = None
    caption: str | None = None
    filename: str | None = None
    template: Template | None = None
    emoji: str | None = None
    target_message_id: str | None = None
    target_provider_message_id: str | None = None

    @property
    def free_form(self) -> bool:
        """Needs the 24-hour customer-service window (everything but templates and read receipts)."""
        return self.type in FREE_FORM_TYPES

    @property
    def creates_message(self) -> bool:
        return self.type in MESSAGE_TYPES

    def stored_text(self) -> str | None:
        if self.type == "text":
            return self.text
        if self.type in MEDIA_TYPES:
            return self.caption
        if self.type == "reaction":
            return self.emoji
        return None

    def content(self) -> dict[str, Any] | None:
        """What the message item keeps besides ``text`` (shown as ``content`` by the inbox)."""
        if self.type == "text":
            return {"preview_url": self.preview_url}
        if self.type in MEDIA_TYPES:
            return {k: v for k, v in {"media_url": self.media_url, "filename": self.filename}.items() if v}
        if self.type == "template" and self.template is not None:
            return {"template": self.template.as_content()}
        if self.type == "reaction":
            return {"reaction": {"message_id": self.target_message_id, "emoji": self.emoji or ""}}
        return None

    def preview(self) -> str:
        text = self.stored_text()
        if text:
            return text[:120]
        if self.type == "template" and self.template is not None:
            return f"[template {self.template.name or self.template.content_sid}]"
        return f"[{self.type}]"


@dataclass(frozen=True)
class ProviderSendResult:
    """The provider accepted the request: its id for the message, and our status for it (``sent``)."""

    provider_message_id: str
    status: str = "sent"
    details: dict[str, Any] = field(default_factory=dict)
