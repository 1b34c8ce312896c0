"""Idempotency keys: one item per (tenant, scope, key), claimed with a conditional put, TTL ``expires_at``.

Life of a key: ``claim`` (state ``in_progress``) → optionally ``set_pending`` (what was stored so far, for crash
recovery) → ``complete`` (state ``done`` with the answer) or ``release`` (deleted: nothing happened, the key may
be used again). Two requests racing with one key: exactly one conditional put succeeds; the other sees the item.

``expires_at`` doubles as the item's version and start time (started = expires_at - ttl): a takeover of an
abandoned ``in_progress`` item is a conditional update on it, so only one caller can take over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from gateway.domain.keys import compose
from gateway.store.models import TENANT, IdempotencyModel

IN_PROGRESS, DONE = "in_progress", "done"


def idempotency_pk(tenant_id: str, scope: str, key: str) -> str:
    """``TENANT#<tenant>#<scope>#<key>``: the client's key goes last, so it may hold ``#`` (gateway.domain.keys)."""
    return compose(TENANT, tenant_id, scope, key)


@dataclass(frozen=True)
class Claim:
    """``new``: the caller owns the key now. ``existing``: someone used it first (see ``item``)."""

    kind: Literal["new", "existing"]
    item: IdempotencyModel


def _conditional_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


class IdempotencyRepository:
    def __init__(self, ttl_seconds: int = 24 * 3600) -> None:
        self.ttl_seconds = ttl_seconds

    def claim(self, pk: str, request_hash: str, *, now: int) -> Claim:
        """Take the key, or return who has it. An expired item still waiting for TTL deletion counts as free."""
        for _ in range(3):
            item = IdempotencyModel(pk, expires_at=now + self.ttl_seconds, request_hash=request_hash, state=IN_PROGRESS)
            try:
                item.save(condition=IdempotencyModel.pk.does_not_exist() | (IdempotencyModel.expires_at <= now))
                return Claim("new", item)
            except PutError as error:
                if not _conditional_failed(error):
                    raise
            existing = self.get(pk)
            if existing is not None and int(existing.expires_at) > now:
                return Claim("existing", existing)
            # Deleted (released) or expired between the put and the read: try again.
        raise RuntimeError(f"could not claim idempotency key {pk}")

    def get(self, pk: str) -> IdempotencyModel | None:
        try:
            return IdempotencyModel.get(pk, consistent_read=True)
        except DoesNotExist:
            return None

    def set_pending(self, item: IdempotencyModel, pending: dict[str, Any]) -> None:
        """Remember what the in-progress request stored (the message), for whoever finds it abandoned."""
        item.update(
            actions=[IdempotencyModel.result.set({"pending": pending})],
            condition=(IdempotencyModel.state == IN_PROGRESS) & (IdempotencyModel.expires_at == item.expires_at),
        )

    def complete(self, item: IdempotencyModel, status_code: int, body: Any) -> None:
        item.update(
            actions=[
                IdempotencyModel.state.set(DONE),
                IdempotencyModel.result.set({"status_code": status_code, "body": body}),
            ],
            condition=(IdempotencyModel.state == IN_PROGRESS) & (IdempotencyModel.expires_at == item.expires_at),
        )

    def release(self, item: IdempotencyModel) -> None:
        """Forget a claim whose request did nothing (the client may use the key again)."""
        try:
            item.delete(
                condition=(IdempotencyModel.state == IN_PROGRESS) & (IdempotencyModel.expires_at == item.expires_at)
            )
        except DeleteError as error:
            if not _conditional_failed(error):
                raise

    def take_over(self, item: IdempotencyModel, *, now: int) -> IdempotencyModel | None:
        """Become the owner of an abandoned ``in_progress`` item (its request died). None: someone else did."""
        mine = IdempotencyModel(item.pk)
        try:
            mine.update(
                actions=[IdempotencyModel.expires_at.set(now + self.ttl_seconds)],
                condition=(IdempotencyModel.state == IN_PROGRESS) & (IdempotencyModel.expires_at == item.expires_at),
            )
        except UpdateError as error:
            if _conditional_failed(error):
                return None
            raise
        return mine
