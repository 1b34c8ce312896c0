"""Make moto's DynamoDB apply each request atomically, as DynamoDB does.

moto applies a request in several unlocked steps and rolls a failed transaction back by restoring a copy of the
whole table, which can erase a concurrent commit. Under concurrent requests (duplicate webhook deliveries, the
load test) that produces outcomes real DynamoDB never does, so both the local stack and the concurrency tests
serialize moto's DynamoDB operations with one lock: what they then test is our code, not moto's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

OPERATIONS = (
    "transact_write_items",
    "transact_get_items",
    "put_item",
    "update_item",
    "get_item",
    "delete_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
)


def make_dynamodb_atomic(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Wrap the operations of moto's DynamoDB backend in one lock. ``setattr_`` lets tests pass
    ``monkeypatch.setattr`` so the wrapping is undone after the test."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in OPERATIONS:
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, "_atomic", False):
            continue

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        locked._atomic = True  # type: ignore[attr-defined]
        setattr_(DynamoDBBackend, name, locked)
