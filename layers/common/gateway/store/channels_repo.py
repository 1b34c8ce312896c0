"""Channels: one item per channel under its tenant, plus one route claim per provider address.

Creating, disabling and re-keying a channel are single transactions over the channel and its route claims, so
"one active channel per Twilio number / Meta phone_number_id / verify token across all tenants" holds under
concurrency. Webhook lookups read the claim then the channel, strongly consistent, cached briefly while warm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.errors import ChannelExists, ChannelNotFound, Conflict
from gateway.store.models import ChannelModel, RouteModel, tenant_pk, transaction_connection

# Numbers of one WhatsApp Business Account considered for a WABA-level notification (bounded pre-auth work).
MAX_WABA_CHANNELS = 20


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
    def __init__(self, cache_ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = cache_ttl_seconds
        self._clock = clock
        self._route_cache: dict[str, tuple[float, Channel | None]] = {}
        self._waba_cache: dict[str, tuple[float, tuple[Channel, ...]]] = {}
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
        """The active channel that owns a provider address, or None. Cached for the warm path (also misses)."""
        now = self._clock()
        with self._lock:
            cached = self._route_cache.get(route_key)
        if cached and cached[0] > now:
            return cached[1]
        channel = self._resolve_uncached(route_key)
        with self._lock:
            if len(self._route_cache) > 4096:
                self._route_cache.clear()
            self._route_cache[route_key] = (now + self._ttl, channel)
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

    def channels_of_waba(self, business_account_id: str, *, limit: int = MAX_WABA_CHANNELS) -> tuple[Channel, ...]:
        """The active Meta channels of a WhatsApp Business Account (several numbers share one), at most
        ``limit``, cached while warm like routes. The index is eventually consistent: a channel created a second
        ago may be missing for that second (its WABA-level notifications are then answered 401 and retried)."""
        key = f"waba#{business_account_id}"
        now = self._clock()
        with self._lock:
            cached = self._waba_cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        found = []
        for hit in ChannelModel.by_waba.query(business_account_id, limit=limit * 4, page_size=limit * 4):
            try:
                channel = _to_domain(ChannelModel.get(hit.pk, hit.sk, consistent_read=True))
            except DoesNotExist:
                continue
            if channel.active and channel.provider is Provider.META:
                found.append(channel)
            if len(found) >= limit:
                break
        with self._lock:
            if len(self._waba_cache) > 1024:
                self._waba_cache.pop(next(iter(self._waba_cache)))
            # a miss is kept for a second only: a channel created a moment ago must not wait a minute
            self._waba_cache[key] = (now + (self._ttl if found else min(self._ttl, 1.0)), tuple(found))
        return tuple(found)

    def record_health(self, channel: Channel, health: dict[str, Any]) -> None:
        """What Meta last said about the number's quality or messaging limit (``phone_number_quality_update``)."""
        item = _to_item(channel)
        item.update(actions=[ChannelModel.health.set(health)], condition=ChannelModel.pk.exists())

    def forget(self, route_keys: Iterable[str]) -> None:
        with self._lock:
            for key in route_keys:
                self._route_cache.pop(key, None)
