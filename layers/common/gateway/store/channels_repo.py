"""Channels: one item per channel under its tenant, plus one route claim per provider address.

Creating, disabling and re-keying a channel are single transactions over the channel and its route claims, so
"one active channel per Twilio number / Meta phone_number_id / verify token across all tenants" holds under
concurrency. Webhook lookups read the claim then the channel, strongly consistent, cached while warm: a known
channel for HIT_CACHE_SECONDS (the webhooks' writes re-check its route claim, so a disabled channel stops at
once), "no such channel" for MISS_CACHE_SECONDS only (a channel created a moment after a probe must be found).
Both caches are bounded and evict their least recently used entries; misses live apart from hits, so a flood of
unknown addresses never pushes a known channel out (docs/decisions.md D15, D22).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.errors import ChannelExists, ChannelNotFound, Conflict
from gateway.store.models import ChannelModel, RouteModel, tenant_pk, transaction_connection

HIT_CACHE_SECONDS = 60.0
MISS_CACHE_SECONDS = 1.0
HIT_CACHE_SIZE = 4096
MISS_CACHE_SIZE = 1024


class ExpiringLru[V]:
    """At most ``size`` entries, each valid for ``ttl`` seconds; the least recently used goes first. Not
    thread-safe on its own (ChannelRepository holds its lock around it)."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size, self._ttl = size, ttl
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, now: float) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= now:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: str, value: V, now: float) -> None:
        self._entries[key] = (now + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def _to_domain(item: ChannelModel) -> Channel:
    return Channel(
        tenant_id=item.tenant_id,
        channel_id=item.channel_id,
        provider=Provider(item.provider),
        name=item.name,
        phone_number=item.phone_number,
        status=ChannelStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        credentials_ciphertext=item.credentials_ciphertext,
        credential_hints=dict(item.credential_hints or {}),
        location_id=item.location_id,
        account_sid=item.account_sid,
        messaging_service_sid=item.messaging_service_sid,
        phone_number_id=item.phone_number_id,
        business_account_id=item.business_account_id,
        verify_token=item.verify_token,
        webhook_verified_at=item.webhook_verified_at,
        auto_reply=item.auto_reply,
        version=int(item.version or 1),
    )


def _to_item(channel: Channel) -> ChannelModel:
    pk, sk = ChannelModel.key(channel.tenant_id, channel.channel_id)
    return ChannelModel(
        pk,
        sk,
        tenant_id=channel.tenant_id,
        channel_id=channel.channel_id,
        provider=channel.provider.value,
        name=channel.name,
        phone_number=channel.phone_number,
        status=channel.status.value,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
        credentials_ciphertext=channel.credentials_ciphertext,
        credential_hints=channel.credential_hints,
        location_id=channel.location_id,
        account_sid=channel.account_sid,
        messaging_service_sid=channel.messaging_service_sid,
        phone_number_id=channel.phone_number_id,
        business_account_id=channel.business_account_id,
        verify_token=channel.verify_token,
        webhook_verified_at=channel.webhook_verified_at,
        auto_reply=channel.auto_reply,
        version=channel.version,
    )


def _route(route_key: str, channel: Channel) -> RouteModel:
    pk, sk = RouteModel.key(route_key)
    return RouteModel(pk, sk, tenant_id=channel.tenant_id, channel_id=channel.channel_id)


def _claim_conflict(error: TransactWriteError) -> bool:
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in error.cancellation_reasons)


class ChannelRepository:
    def __init__(
        self,
        *,
        hit_seconds: float = HIT_CACHE_SECONDS,
        miss_seconds: float = MISS_CACHE_SECONDS,
        hit_size: int = HIT_CACHE_SIZE,
        miss_size: int = MISS_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._hits: ExpiringLru[Channel] = ExpiringLru(hit_size, hit_seconds)
        self._misses: ExpiringLru[None] = ExpiringLru(miss_size, miss_seconds)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ tenant-facing
    def create(self, channel: Channel) -> Channel:
        """Store a new channel and claim its addresses; ChannelExists when any address is taken."""
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(_to_item(channel), condition=ChannelModel.pk.does_not_exist())
                for key in channel.route_keys():
                    tx.save(_route(key, channel), condition=RouteModel.pk.does_not_exist())
        except TransactWriteError as error:
            if _claim_conflict(error):
                raise ChannelExists(
                    "This WhatsApp number (or verify token) is already connected to a channel.",
                    field="phone_number_id" if channel.provider is Provider.META else "phone_number",
                ) from error
            raise
        return channel

    def get(self, tenant_id: str, channel_id: str) -> Channel:
        try:
            return _to_domain(ChannelModel.get(*ChannelModel.key(tenant_id, channel_id), consistent_read=True))
        except DoesNotExist as error:
            raise ChannelNotFound(f"No channel {channel_id}.") from error

    def list(self, tenant_id: str) -> list[Channel]:
        items = ChannelModel.query(tenant_pk(tenant_id), ChannelModel.sk.startswith("CHANNEL#"))
        return sorted((_to_domain(i) for i in items), key=lambda c: c.created_at)

    def replace(self, before: Channel, after: Channel) -> Channel:
        """Write ``after`` if nobody changed the channel since ``before`` was read; move route claims as needed.

        Claims are released when the channel is disabled, taken when it is (re-)enabled or when its verify
        token changes. ChannelExists when a claim to take is held by another channel.
        """
        after = after.with_changes(version=before.version + 1)
        old_keys = set(before.route_keys()) if before.active else set()
        new_keys = set(after.route_keys()) if after.active else set()
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(_to_item(after), condition=ChannelModel.version == before.version)
                for key in sorted(old_keys - new_keys):
                    tx.delete(RouteModel(*RouteModel.key(key)), condition=RouteModel.channel_id == before.channel_id)
                for key in sorted(new_keys - old_keys):
                    tx.save(_route(key, after), condition=RouteModel.pk.does_not_exist())
        except TransactWriteError as error:
            reasons = error.cancellation_reasons
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                raise Conflict("The channel was changed by someone else meanwhile; read it again.") from error
            if _claim_conflict(error):
                raise ChannelExists("This WhatsApp number or verify token is connected to another channel.") from error
            raise
        self.forget(before.route_keys())
        return after

    def mark_webhook_verified(self, channel: Channel, when: str) -> None:
        item = _to_item(channel)
        item.update(actions=[ChannelModel.webhook_verified_at.set(when)], condition=ChannelModel.pk.exists())

    # ------------------------------------------------------------------ webhook-facing
    def resolve(self, route_key: str) -> Channel | None:
        """The active channel that owns a provider address, or None. Cached for the warm path: a channel for
        HIT_CACHE_SECONDS, a miss for MISS_CACHE_SECONDS (see the module's docstring)."""
        now = self._clock()
        with self._lock:
            found, channel = self._hits.get(route_key, now)
            if found or self._misses.get(route_key, now)[0]:
                return channel
        channel = self._resolve_uncached(route_key)
        with self._lock:
            if channel is None:
                self._hits.pop(route_key)
                self._misses.put(route_key, None, now)
            else:
                self._misses.pop(route_key)
                self._hits.put(route_key, channel, now)
        return channel

    def _resolve_uncached(self, route_key: str) -> Channel | None:
        try:
            route = RouteModel.get(*RouteModel.key(route_key), consistent_read=True)
            channel = _to_domain(
                ChannelModel.get(*ChannelModel.key(route.tenant_id, route.channel_id), consistent_read=True)
            )
        except DoesNotExist:
            return None
        return channel if channel.active else None

    def forget(self, route_keys: Iterable[str]) -> None:
        with self._lock:
            for key in route_keys:
                self._hits.pop(key)
                self._misses.pop(key)
