"""Phone numbers: E.164 by shape only (DESIGN §2), and the provider address forms."""

from __future__ import annotations

import re

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_WHATSAPP_PREFIX = "whatsapp:"


def is_e164(value: str) -> bool:
    """``+`` then 7 to 15 digits, no leading 0. Deliberately no numbering-plan check: Meta's test numbers are +1 555."""
    return bool(_E164.fullmatch(value))


def normalize_e164(value: str) -> str:
    """Accept the forms people paste (spaces, dashes, dots, brackets) and return strict E.164 or raise ValueError."""
    compact = re.sub(r"[\s\-().]", "", value or "")
    if not is_e164(compact):
        raise ValueError("must be an E.164 phone number: '+' followed by 7 to 15 digits, no leading 0")
    return compact


def from_twilio_address(address: str) -> str:
    """``whatsapp:+14155238886`` → ``+14155238886`` (raises ValueError on anything else)."""
    value = address.strip()
    if value.lower().startswith(_WHATSAPP_PREFIX):
        value = value[len(_WHATSAPP_PREFIX) :]
    return normalize_e164(value)


def to_twilio_address(phone: str) -> str:
    return f"{_WHATSAPP_PREFIX}{phone}"


def from_wa_id(wa_id: str) -> str:
    """Meta's ``wa_id``/``from`` are digits without ``+``."""
    return normalize_e164("+" + wa_id.lstrip("+"))
