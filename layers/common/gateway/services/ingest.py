"""What webhooks do after verifying a request: resolve the channel, store messages, apply statuses.

Kept deliberately small: everything slow (media, auto-replies, events) happens in the inbound processor,
fed by the messages table's stream. Warm, a message costs one DynamoDB request (the transaction) and no KMS
call: channel routes and decrypted secrets are cached in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.credentials import CredentialsCipher, Secrets
from gateway.domain.channel import Channel
from gateway.domain.message import InboundMessage
from gateway.domain.status import StatusUpdate
from gateway.store.channels_repo import ChannelRepository
from gateway.store.messages_repo import MessageRepository


@dataclass
class IngestService:
    channels: ChannelRepository = field(default_factory=ChannelRepository)
    messages: MessageRepository = field(default_factory=MessageRepository)
    cipher: CredentialsCipher = field(default_factory=CredentialsCipher)

    def channel_for(self, route_key: str) -> Channel | None:
        """The active channel owning a provider address (cached while warm), or None."""
        return self.channels.resolve(route_key)

    def secrets(self, channel: Channel) -> Secrets:
        return self.cipher.decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext)

    def store_message(self, channel: Channel, message: InboundMessage) -> str | None:
        """The new message id, or None for a redelivery (nothing changed)."""
        return self.messages.record_inbound(channel, message)

    def apply_status(self, channel: Channel, update: StatusUpdate) -> str:
        """``applied`` | ``stale`` | ``parked`` (see MessageRepository.apply_status)."""
        return self.messages.apply_status(channel.tenant_id, update)
