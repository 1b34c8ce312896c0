"""Identifiers. Random ids for things users create; deterministic ids where a retry must land on the same row."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import UTC, datetime

from gateway.domain.keys import compose, segment

ID_SEPARATOR = "\x1f"


def _b32(data: bytes, length: int) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()[:length]


def new_id(prefix: str) -> str:
    return f"{prefix}_{_b32(secrets.token_bytes(15), 24)}"


def stable_id(prefix: str, *parts: str) -> str:
    """Same inputs → same id. Lets a webhook upsert a conversation without reading it first.

    The parts are joined by ``keys.compose`` (separator ``\x1f``), so different parts never hash the same input."""
    digest = hashlib.sha256(compose(*parts, separator=ID_SEPARATOR).encode()).digest()
    return f"{prefix}_{_b32(digest, 24)}"


def conversation_id(tenant_id: str, channel_id: str, contact_anchor: str) -> str:
    """A contact's one-to-one conversation on a channel, from the identity the contact was anchored on (its phone
    for every contact that had one when first seen, else its BSUID: domain/contact.py ``ContactLink``).

    The anchor is a segment although it comes last: a group's conversation has one part more under the same
    prefix, so this input must hold fewer separators than any group's (docs/decisions.md D18)."""
    return stable_id("cv", tenant_id, channel_id, segment(contact_anchor, ID_SEPARATOR))


def group_conversation_id(tenant_id: str, channel_id: str, group_id: str) -> str:
    """A WhatsApp group's conversation on a channel (never any member's one-to-one: five parts, not four)."""
    return stable_id("cv", tenant_id, channel_id, "group", group_id)


def new_verify_token() -> str:
    return secrets.token_urlsafe(24)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, sortable as a string."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


# 9999-12-31T23:59:59Z: beyond it an ISO year has five digits and would no longer sort as text.
MAX_EPOCH = 253402300799


def iso_from_epoch(seconds: int) -> str:
    """Unix seconds → the same form as ``iso`` (``.000Z``), without building a datetime or calling strftime:
    the webhook parsers convert a timestamp per message and status. ValueError beyond ``MAX_EPOCH``."""
    if not 0 <= seconds <= MAX_EPOCH:
        raise ValueError("timestamp out of range")
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.000Z"


def now_iso() -> str:
    """``iso(utcnow())`` at a third of the cost (no datetime, no strftime): once per webhook request."""
    now = time.time()
    whole = int(now)
    t = time.gmtime(whole)
    millis = int((now - whole) * 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
