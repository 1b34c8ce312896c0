"""Contacts: a person a tenant talks to, found by phone number or by WhatsApp's business-scoped user id.

WhatsApp users may adopt a username and then arrive without a phone number; Meta (and Twilio) identify them by a
business-scoped user id (BSUID: a two-letter country code, optionally ``ENT`` for a parent BSUID shared across
portfolios, then up to 128 alphanumerics: ``US.13491208655302741918``, ``US.ENT.11815799212886844830``). A
contact is therefore a record with its own id, linked to a phone and/or a BSUID (docs/decisions.md, "Contacts
with their own ids").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.domain import ids
from gateway.domain.keys import segment

BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
_USERNAME = re.compile(r"[^\s@]{1,128}")


def is_bsuid(value: str) -> bool:
    return BSUID.fullmatch(value) is not None


def clean_username(value: Any) -> str | None:
    """A username as stored: without its leading ``@``; None for anything with whitespace, another ``@``, empty
    or longer than 128 characters."""
    if type(value) is not str:
        return None
    name = value.removeprefix("@")
    return name if _USERNAME.fullmatch(name) else None


@dataclass(slots=True, frozen=True)
class ContactRef:
    """How a provider identified the person on the other side: a phone number, a business-scoped user id (BSUID,
    ``wa_user_id``), or both. A user who adopted a WhatsApp username may come with no phone at all.

    ``username`` is stored without its leading ``@``. At least one of ``phone`` / ``wa_user_id`` is set (the
    parsers refuse an item that has neither).
    """

    phone: str | None = None
    wa_user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    name: str | None = None

    @property
    def address(self) -> str:
        """What the provider's send API takes for this contact: the phone when known, else the BSUID."""
        return self.phone or self.wa_user_id or ""


class IdentityKind(StrEnum):
    PHONE = "phone"
    WA_USER = "wa"


@dataclass(slots=True, frozen=True)
class Identity:
    """One way to find a contact: its phone number or its BSUID. Unique per tenant (claimed, see
    store/contacts_repo.py)."""

    kind: IdentityKind
    value: str


def identities(ref: ContactRef) -> list[Identity]:
    """The identities a message names, phone first."""
    found = []
    if ref.phone:
        found.append(Identity(IdentityKind.PHONE, ref.phone))
    if ref.wa_user_id:
        found.append(Identity(IdentityKind.WA_USER, ref.wa_user_id))
    return found


@dataclass(slots=True, frozen=True)
class ContactLink:
    """Where a contact lives: its id and its anchor, the identity its id was derived from when it was created.

    The anchor never changes (a contact first seen by BSUID keeps that anchor when its phone is linked later), so
    the ids derived from it never change either: the contact id and its one-to-one conversation per channel."""

    contact_id: str
    anchor: Identity
    generation: int = 0  # erasures of this anchor before this contact (derive_link)

    def conversation_id(self, tenant_id: str, channel_id: str) -> str:
        """The one-to-one conversation of this contact on a channel. For a phone anchor this is the id the
        gateway always derived from (tenant, channel, phone): conversations stored before contacts had ids keep
        theirs (docs/decisions.md, "Contacts with their own ids")."""
        return ids.conversation_id(tenant_id, channel_id, self.anchor.value)


def derive_link(tenant_id: str, anchor: Identity, generation: int = 0) -> ContactLink:
    """The contact a new identity creates: its id derived from (tenant, anchor), so a webhook can write the contact
    without reading first. ``generation`` > 0 after an erasure, so that a person who writes again after their
    contact was erased starts a fresh contact with a new id. The anchor's value is a segment even when it comes
    last: the input after an erasure has one part more (docs/decisions.md D18)."""
    value = segment(anchor.value, ids.ID_SEPARATOR)
    parts = [tenant_id, anchor.kind.value, value] + ([str(generation)] if generation else [])
    return ContactLink(ids.stable_id("ct", *parts), anchor, generation)


def first_link(tenant_id: str, ref: ContactRef) -> ContactLink:
    """The link a contact seen for the first time gets: anchored on its phone when it has one (as every contact
    stored before BSUIDs existed), else on its BSUID."""
    return derive_link(tenant_id, identities(ref)[0])


@dataclass(slots=True)
class Contact:
    """A tenant's contact (the API's view, docs/openapi.json ``Contact``)."""

    tenant_id: str
    contact_id: str
    phone: str | None = None
    wa_user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    name: str | None = None
    registered: bool = False
    opted_out: bool = False
    opted_out_at: str | None = None
    marketing_opted_out: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    created_at: str | None = None
    last_inbound_at: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.contact_id,
            "phone": self.phone,
            "wa_user_id": self.wa_user_id,
            "username": self.username,
            "name": self.name,
            "registered": self.registered,
            "opted_out": self.opted_out,
            "opted_out_at": self.opted_out_at,
            "marketing_opted_out": self.marketing_opted_out,
            "attributes": dict(self.attributes),
            "tags": list(self.tags),
            "created_at": self.created_at,
            "last_inbound_at": self.last_inbound_at,
        }
