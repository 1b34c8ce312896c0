"""Identifiers. Random ids for things users create; deterministic ids where a retry must land on the same row."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime

from gateway.domain.keys import compose


def _b32(data: bytes, length: int) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()[:length]


def new_id(prefix: str) -> str:
    return f"{prefix}_{_b32(secrets.token_bytes(15), 24)}"


def stable_id(prefix: str, *parts: str) -> str:
    """Same inputs → same id. Lets a webhook upsert a conversation without reading it first.

    The parts are joined by ``keys.compose`` (separator ``\x1f``), so different parts never hash the same input."""
    digest = hashlib.sha256(compose(*parts, separator="\x1f").encode()).digest()
    return f"{prefix}_{_b32(digest, 24)}"


def conversation_id(tenant_id: str, channel_id: str, contact_phone: str) -> str:
    return stable_id("cv", tenant_id, channel_id, contact_phone)


def new_verify_token() -> str:
    return secrets.token_urlsafe(24)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, sortable as a string."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
