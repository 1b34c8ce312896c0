"""Provider-neutral messages: what every provider's inbound payload is normalized into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from gateway.domain.contact import ContactRef


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


@dataclass(slots=True)
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
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


class Origin(StrEnum):
    """Who wrote a message the provider reported: the contact, or the business itself from the WhatsApp Business
    app on a coexistence number (an echo: stored as outbound, docs/webhook-fields.md)."""

    CONTACT = "contact"
    BUSINESS_APP = "business_app"


@dataclass(slots=True)
class InboundMessage:
    """A message a provider reported on one of a tenant's channels, already verified and normalized.

    ``origin`` is ``contact`` for what the contact wrote, ``business_app`` for a coexistence echo (what the
    business wrote from the WhatsApp Business app to the contact). ``group_id``: the message was written in a
    WhatsApp group (it belongs to the group's conversation, never to the sender's one-to-one).
    ``provider_timestamp``: when the provider says it happened (ISO 8601), None when absent or implausible.
    """

    provider: str
    provider_message_id: str
    contact: ContactRef
    type: str
    text: str | None = None
    media: list[MediaRef] = field(default_factory=list)
    location: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    provider_timestamp: str | None = None
    origin: Origin = Origin.CONTACT
    group_id: str | None = None

    @property
    def contact_phone(self) -> str | None:
        return self.contact.phone

    def preview(self) -> str:
        if self.text:
            return self.text[:120]
        return f"[{self.type}]"


class AmendmentKind(StrEnum):
    EDIT = "edit"
    REVOKE = "revoke"


@dataclass(slots=True)
class Amendment:
    """An edit or a deletion of a message reported earlier (``original_provider_message_id``).

    ``edit``: ``text`` is the new text or caption (None when the edited message has none). ``revoke``: the
    author deleted it. ``origin`` says whose message it was (the contact's, or the business's from the app).
    """

    provider: str
    provider_message_id: str
    original_provider_message_id: str
    kind: AmendmentKind
    contact: ContactRef
    text: str | None = None
    provider_timestamp: str | None = None
    origin: Origin = Origin.CONTACT


@dataclass(slots=True)
class AccountNotice:
    """Business-account news a provider sent about the account rather than a conversation: a template's status,
    quality or category, a contact's marketing preference, a number's quality or name, account events.

    ``field`` is the provider's name for it (Meta's webhook field), ``account_id`` the business account it is
    about (Meta's WABA id), ``phone_number_id`` the number when the notification names one. ``contact`` is set
    for a contact's preference (``user_preferences``). What the gateway does with each: docs/webhook-fields.md.
    """

    field: str
    account_id: str | None
    phone_number_id: str | None
    data: dict[str, Any]
    contact: ContactRef | None = None


def effective_created_at(provider_timestamp: str | None, received_at: str, *, max_skew_seconds: int = 300) -> str:
    """When a message happened, for ordering and the 24-hour window: the provider's timestamp when it is sane
    (not more than ``max_skew_seconds`` in the future of our arrival time), else the arrival time. Both are the
    gateway's ISO 8601 form, which sorts as text."""
    if provider_timestamp is None:
        return received_at
    limit = _plus_seconds(received_at, max_skew_seconds)
    return provider_timestamp if provider_timestamp <= limit else received_at


def _plus_seconds(iso_value: str, seconds: int) -> str:
    from gateway.domain import ids

    return ids.iso(ids.parse_iso(iso_value) + timedelta(seconds=seconds))
