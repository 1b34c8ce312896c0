"""The one way a webhook writes: a TransactWriteItems whose first item re-checks the number's route claim.

A webhook resolves its channel from a warm cache (store/channels_repo.py); the check makes a channel disabled a
moment ago refuse at once (ChannelNotFound, nothing written), at no extra request (docs/decisions.md D15).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from gateway.domain.channel import Channel
from gateway.domain.errors import ChannelNotFound
from gateway.store.models import RouteModel, transaction_connection


@contextmanager
def transaction(channel: Channel | None = None, route_key: str | None = None) -> Iterator[TransactWrite]:
    """One TransactWriteItems. With ``route_key``, its first item checks that the provider address is still
    claimed by ``channel``: ChannelNotFound when it is not."""
    check = None if channel is None or route_key is None else (channel.channel_id, route_key)
    try:
        with TransactWrite(connection=transaction_connection()) as tx:
            if check is not None:
                channel_id, key = check
                tx.condition_check(RouteModel, *RouteModel.key(key), condition=RouteModel.channel_id == channel_id)
            yield tx
    except TransactWriteError as error:
        if check is not None and cancellation_codes(error)[:1] == ["ConditionalCheckFailed"]:
            raise ChannelNotFound("The channel for this number was disabled.") from error
        raise


def cancellation_codes(error: TransactWriteError, *, guarded: bool = False) -> list[str | None]:
    """The cancellation reason of each item, without the route check's when ``guarded``."""
    codes = [r.code if r is not None else None for r in error.cancellation_reasons or []]
    return codes[1:] if guarded else codes
