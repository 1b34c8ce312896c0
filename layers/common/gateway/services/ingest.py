"""What webhooks do after verifying a request: resolve the channel, store messages, apply statuses.

Kept deliberately small: everything slow (media, auto-replies, events) happens in the inbound processor,
fed by the messages table's stream. Warm, a message costs one DynamoDB request (the transaction) and no KMS
call: channel routes and decrypted secrets are cached in memory.
"""

from __future__ import annotations

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
        self, channel: Channel, message: InboundMessage, *, route_key: str | None = None, now: str | None = None
    ) -> str | None:
        """The new message id, or None for a redelivery (nothing changed). ``now``: when it arrived.

        With ``route_key`` (the address the channel was resolved by), a channel disabled since it was cached is
        refused in the same transaction: ChannelNotFound, the cache entry dropped, nothing stored.
        """
        try:
            return self.messages.record_inbound(channel, message, route_key=route_key, now=now)
        except ChannelNotFound:
            if route_key is not None:
                self.channels.forget([route_key])
            raise

    def apply_status(self, channel: Channel, update: StatusUpdate) -> str:
        """``applied`` | ``stale`` | ``parked`` (see MessageRepository.apply_status)."""
        return self.messages.apply_status(channel.tenant_id, update)

    def apply_amendment(self, channel: Channel, amendment: Amendment, *, now: str) -> str:
        """An edit or deletion of an earlier message: ``applied`` | ``parked`` (the original is not stored yet and
        gets it when it arrives) | ``stale`` (an older amendment than the one applied)."""
        return self.messages.apply_amendment(channel.tenant_id, amendment, now=now)

    def apply_notice(self, channel: Channel, notice: AccountNotice) -> str:
        """What the gateway does with business-account news (docs/webhook-fields.md); returns what was done."""
        if notice.field == "user_preferences" and notice.contact is not None:
            opted_out = bool(notice.data.get("marketing_opted_out"))
            at = str(notice.data.get("at"))
            found = self.contacts.set_marketing_preference(
                channel.tenant_id, notice.contact, opted_out=opted_out, at=at
            )
            return "recorded" if found is not None else "unknown_contact"
        if notice.field == "phone_number_quality_update":
            number = str(notice.data.get("display_phone_number") or "")
            if number.lstrip("+") != channel.phone_number.lstrip("+"):
                return "other_number"
            self.channels.record_health(channel, notice.data)
            return "recorded"
        logger.info(
            "meta business account notice",
            extra={"tenant_id": channel.tenant_id, "channel_id": channel.channel_id, "field": notice.field,
                   "data": notice.data},
        )
        return "counted"
