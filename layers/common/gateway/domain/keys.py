"""Composite keys: the one function that joins parts into a DynamoDB key or a hashed id (docs/decisions.md D1).

A key joins its parts with a separator (``#`` for DynamoDB keys, ``\\x1f`` inside ``ids.stable_id``). Every
part but the last must not contain the separator: then the key reads back into exactly its parts (split on
the first ``len(parts) - 1`` separators), so two different tuples of parts can never make the same key. The
last part needs no rule because nothing follows it, which is why client-chosen values (an ``Idempotency-Key``,
a provider's message id) go last. Nothing is escaped, so every key that was valid before this rule existed is
byte-identical; a part that would break it is refused (``ValueError``: fail closed), never stored.
"""

from __future__ import annotations

SEPARATOR = "#"


def segment(part: str, separator: str = SEPARATOR) -> str:
    """A part that more parts may follow: it may not contain the separator."""
    if separator in part:
        raise ValueError(f"a key part that more parts may follow may not contain {separator!r}")
    return part


def compose(*parts: str, separator: str = SEPARATOR) -> str:
    """``compose("TENANT", "acme", "send", key)`` → ``"TENANT#acme#send#<key>"``."""
    for part in parts[:-1]:
        segment(part, separator)
    return separator.join(parts)
