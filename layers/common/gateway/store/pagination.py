"""Opaque cursors over DynamoDB's LastEvaluatedKey, checked so a cursor can only page the caller's own data."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from gateway.domain.errors import ValidationFailed


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, partition_attr: str, partition_value: str) -> dict[str, Any] | None:
    """The start key, or ValidationFailed when the cursor is garbage or belongs to another partition."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor") from error
    if not isinstance(key, dict) or not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor")
    if key.get(partition_attr, {}).get("S") != partition_value:
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor")
    return key
