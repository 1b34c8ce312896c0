"""Opaque cursors over DynamoDB's LastEvaluatedKey, checked so a cursor can only page the caller's own data."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from gateway.domain.errors import ValidationFailed


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str | None,
    *,
    partition_attr: str,
    partition_value: str,
    other_keys: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The start key, or ValidationFailed when the cursor is garbage or belongs to another partition.

    ``other_keys`` (attribute → required prefix) are the rest of the key a start key must have: exactly these
    attributes besides the partition, each a non-empty string with its prefix. DynamoDB refuses any other start
    key with a ValidationException (a 500 of ours), e.g. a forged cursor that names only the partition or a sort
    key outside the query's key condition.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor") from error
    if not isinstance(key, dict) or not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and v["S"] for v in key.values()
    ):
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor")
    if key.get(partition_attr, {}).get("S") != partition_value:
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor")
    if other_keys is not None and (
        set(key) != {partition_attr, *other_keys}
        or not all(key[name]["S"].startswith(prefix) for name, prefix in other_keys.items())
    ):
        raise ValidationFailed("cursor: is not a cursor this API returned", field="cursor")
    return key
