"""What webhooks do after verifying a request: resolve the channel, store messages, apply statuses.

Kept deliberately small: everything slow (media, auto-replies, events) happens in the inbound processor,
fed by the messages table's stream. Warm, a message costs one DynamoDB request (the transaction) and no KMS
call: channel routes and decrypted secrets are cached in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from gateway.credentials import CredentialsCipher, Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import ChannelNotFound
from gateway.domain.message import AccountNotice, Amendment, InboundMessage
from gateway.domain.status import StatusUpdate
from gateway.observability import logger
from gateway.store.channels_repo import ChannelRepository
from gateway.store.contacts_repo import ContactRepository
from gateway.store.messages_repo import MessageRepository


@dataclass
class IngestService:
    channels: ChannelRepository = field(default_factory=ChannelRepository)
    messages: MessageRepository = field(default_factory=MessageRepository)
    cipher: CredentialsCipher = field(default_factory=CredentialsCipher)
    contacts: ContactRepository = field(default_factory=ContactRepository)

    def channel_for(self, route_key: str) -> Channel | None:
        """The active channel owning a provider address (cached while warm), or None."""
        return self.channels.resolve(route_key)

    def secrets(self, channel: Channel) -> Secrets:
        return self.cipher.decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext)

    def store_message(
        self, channel: Channel, message: InboundMessage, *, route_key: str, now: str | None = None
    ) -> str | None:
        """The new message id, or None for a redelivery (nothing changed). ``now``: when it arrived.

        ``route_key`` is the address the channel was resolved by: a channel disabled since it was cached is
        refused in the same transaction (ChannelNotFound, the cache entries dropped, nothing stored). The same
        holds for every write below: each is a webhook write.
        """
        with self._forgetting(channel, route_key):
            return self.messages.record_inbound(channel, message, route_key=route_key, now=now)

    def apply_status(self, channel: Channel, update: StatusUpdate, *, route_key: str) -> str:
        """``applied`` | ``stale`` | ``parked`` (see MessageRepository.apply_status)."""
        with self._forgetting(channel, route_key):
            return self.messages.apply_status(channel, update, route_key=route_key)

    def apply_amendment(self, channel: Channel, amendment: Amendment, *, now: str, route_key: str) -> str:
        """An edit or deletion of an earlier message: ``applied`` | ``parked`` (the original is not stored yet and
        gets it when it arrives) | ``stale`` (an older amendment than the one applied)."""
        with self._forgetting(channel, route_key):
            return self.messages.apply_amendment(channel, amendment, now=now, route_key=route_key)

    def apply_notice(self, channel: Channel, notice: AccountNotice, *, route_key: str) -> str:
        """What the gateway does with business-account news (docs/webhook-fields.md); returns what was done.
        ``route_key``: the channel's own number's (a WABA-level notice names none)."""
        if notice.field == "user_preferences" and notice.contact is not None:
            opted_out = bool(notice.data.get("marketing_opted_out"))
            at = str(notice.data.get("at"))
            with self._forgetting(channel, route_key):
                found = self.contacts.set_marketing_preference(
                    channel, notice.contact, opted_out=opted_out, at=at, route_key=route_key
                )
            return "recorded" if found is not None else "unknown_contact"
        if notice.field == "phone_number_quality_update":
            number = str(notice.data.get("display_phone_number") or "")
            if number.lstrip("+") != channel.phone_number.lstrip("+"):
                return "other_number"
            with self._forgetting(channel, route_key):
                self.channels.record_health(channel, notice.data, route_key=route_key)
            return "recorded"
        logger.info(
            "meta business account notice",
            extra={"tenant_id": channel.tenant_id, "channel_id": channel.channel_id, "field": notice.field,
                   "data": notice.data},
        )
        return "counted"

    @contextmanager
    def _forgetting(self, channel: Channel, route_key: str) -> Iterator[None]:
        """ChannelNotFound passes through, and the warm caches forget the channel: its number and its account."""
        try:
            yield
        except ChannelNotFound:
            self.channels.forget([route_key], channel.business_account_id)
            raise
