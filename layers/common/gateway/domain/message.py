"""Provider-neutral messages: what every provider's inbound payload is normalized into."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


MESSAGE_TYPES = frozenset(
    [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "unsupported",
        "template",
    ]
)


@dataclass
class MediaRef:
    """One attachment. Webhooks store it ``pending``; the inbound processor moves it to ``stored|failed``."""

    content_type: str | None = None
    provider_url: str | None = None
    provider_media_id: str | None = None
    sha256: str | None = None
    size: int | None = None
    filename: str | None = None
    caption: str | None = None
    status: str = "pending"
    s3_key: str | None = None
    reason: str | None = None

    def to_item(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class InboundMessage:
    """A message a contact sent to one of a tenant's channels, already verified and normalized."""

    provider: str
    provider_message_id: str
    contact_phone: str
    type: str
    contact_name: str | None = None
    wa_id: str | None = None
    text: str | None = None
    media: list[MediaRef] = field(default_factory=list)
    location: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    provider_timestamp: str | None = None

    def preview(self) -> str:
        if self.text:
            return self.text[:120]
        return f"[{self.type}]"
