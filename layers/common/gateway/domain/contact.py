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
from typing import Any

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
