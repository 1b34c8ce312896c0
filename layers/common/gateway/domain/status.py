"""Delivery statuses: both providers' vocabularies mapped onto the contract's, and the forward-only rule.

Rank: queued < sent < delivered < read. ``failed`` is terminal (nothing moves a failed message) but it never
overwrites delivered/read: a late failure report after delivery changes nothing (PROTOCOLS §4, §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUEUED, SENT, DELIVERED, READ, FAILED = "queued", "sent", "delivered", "read", "failed"
RANK = {QUEUED: 0, SENT: 2, DELIVERED: 3, READ: 4, FAILED: 99}

_TWILIO = {
    "accepted": QUEUED,
    "scheduled": QUEUED,
    "queued": QUEUED,
    "sending": QUEUED,
    "sent": SENT,
    "delivered": DELIVERED,
    "partially_delivered": DELIVERED,
    "read": READ,
    "undelivered": FAILED,
    "failed": FAILED,
    "canceled": FAILED,
}
_META = {"sent": SENT, "delivered": DELIVERED, "read": READ, "played": READ, "failed": FAILED}


def from_twilio(status: str) -> str | None:
    return _TWILIO.get(status.strip().lower())


def from_meta(status: str) -> str | None:
    return _META.get(status.strip().lower())


def rank(status: str) -> int:
    return RANK[status]


def may_replace(current: str | None, new: str) -> bool:
    """Whether ``new`` may overwrite ``current`` under the forward-only rule (the conditional write's logic)."""
    if current is None:
        return True
    if new == FAILED:
        return RANK[current] < RANK[DELIVERED]
    return RANK[current] < RANK[new]


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's report about one of our outbound messages, normalized."""

    provider: str
    provider_message_id: str
    status: str
    provider_status: str
    at: str
    error: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
