"""Make moto's DynamoDB ``TransactWriteItems`` cost what the transaction touches, not the size of the tables.

moto snapshots every table a transaction names with ``copy.deepcopy`` before applying it (items, indexes and the
table's whole stream shard), so that a cancelled transaction can be rolled back by putting the copies back. The
copy grows with the table: in the local stack a webhook's transaction took ~80 ms after a few hundred messages
and kept growing (docs/RELIABILITY.md, "Load"), and nearly all of it was the copy.

``make_transactions_cheap`` keeps moto's own implementation (its checks, its conditions, its writes and their
stream records) and replaces only the snapshot: before the transaction runs, each item it names is copied (one
item, or None when absent) together with the length of each touched table's stream; if the transaction fails,
exactly those items are put back and the stream records it appended are dropped. The tables are left as moto's
rollback leaves them (the same items, the same stream), and kept as the same objects. It assumes, as the whole
table copy already did, that nothing else writes to the tables while the transaction runs: apply it BEFORE
``local.moto_atomic.make_dynamodb_atomic``, which serializes DynamoDB requests around it.
local/tests/test_moto_transactions.py checks it against moto's own behaviour on random transactions.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable
from typing import Any

_MARK = "_cheap_transactions"


def make_transactions_cheap(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Patch moto's DynamoDB backend (idempotent). ``setattr_``: tests pass ``monkeypatch.setattr``."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, _MARK, False):
        return
    if getattr(original, "_atomic", False):
        raise RuntimeError("apply make_transactions_cheap before make_dynamodb_atomic (it must run inside the lock)")

    real_deepcopy = copy.deepcopy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        # moto's snapshot of a whole table becomes the table itself (its "rollback" then puts the same object
        # back); every other copy moto makes (an item before an update) stays a real copy.
        return value if isinstance(value, Table) else real_deepcopy(value, memo)

    shim = types.ModuleType("copy")
    shim.__dict__.update(copy.__dict__)
    shim.deepcopy = deepcopy  # type: ignore[attr-defined]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        journal = _snapshot(self, transact_items)
        try:
            return original(self, transact_items)
        except BaseException:
            _restore(journal)
            raise

    setattr(transact_write_items, _MARK, True)
    setattr_(models, "copy", shim)
    setattr_(DynamoDBBackend, "transact_write_items", transact_write_items)


class _Journal:
    def __init__(self) -> None:
        # (table, hash key, range key or None, copy of the item or None, whether the hash partition existed)
        self.items: list[tuple[Any, Any, Any, Any, bool]] = []
        self.streams: dict[int, tuple[Any, int]] = {}  # id(table) → (table, stream length)


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> _Journal:
    from moto.dynamodb.models.dynamo_type import DynamoType

    journal = _Journal()
    seen: set[tuple[int, Any, Any]] = set()
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue  # moto refuses it before writing anything
        op_type, op = next(iter(entry.items()))
        if not isinstance(op, dict):
            continue
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            attrs = op["Item"] if op_type == "Put" else op["Key"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        except (KeyError, TypeError, AttributeError):
            continue  # moto refuses it (a validation error) before writing it
        marker = (id(table), hash_key, range_key)
        if marker in seen:
            continue  # moto refuses two operations on one item before writing the second
        seen.add(marker)
        if table.stream_shard is not None and id(table) not in journal.streams:
            journal.streams[id(table)] = (table, len(table.stream_shard.items))
        partition_existed = hash_key in table.items
        current = _current(table, hash_key, range_key) if partition_existed else None
        journal.items.append((table, hash_key, range_key, copy.deepcopy(current), partition_existed))
    return journal


def _current(table: Any, hash_key: Any, range_key: Any) -> Any:
    partition = table.items.get(hash_key)
    if range_key is None:
        return partition
    return partition.get(range_key) if isinstance(partition, dict) else None


def _restore(journal: _Journal) -> None:
    for table, hash_key, range_key, item, partition_existed in reversed(journal.items):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
            continue
        if item is None:
            partition = table.items.get(hash_key)
            if isinstance(partition, dict):
                partition.pop(range_key, None)
                if not partition and not partition_existed:
                    table.items.pop(hash_key, None)
        else:
            table.items[hash_key][range_key] = item
    for table, length in journal.streams.values():
        if table.stream_shard is not None:
            del table.stream_shard.items[length:]
