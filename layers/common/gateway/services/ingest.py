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

    def store_message(self, channel: Channel, message: InboundMessage, *, route_key: str) -> str | None:
        """The new message id, or None for a redelivery (nothing changed).

        ``route_key`` is the address the channel was resolved by: a channel disabled since it was cached is
        refused in the same transaction (ChannelNotFound, the cache entry dropped, nothing stored).
        """
        with self._forgetting(route_key):
            return self.messages.record_inbound(channel, message, route_key=route_key)

    def apply_status(self, channel: Channel, update: StatusUpdate, *, route_key: str) -> str:
        """``applied`` | ``stale`` | ``parked`` (see MessageRepository.apply_status); like ``store_message``,
        ChannelNotFound when the channel was disabled since it was cached (nothing changed)."""
        with self._forgetting(route_key):
            return self.messages.apply_status(channel, update, route_key=route_key)

    @contextmanager
    def _forgetting(self, route_key: str) -> Iterator[None]:
        try:
            yield
        except ChannelNotFound:
            self.channels.forget([route_key])
            raise
