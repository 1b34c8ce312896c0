"""The inbound processor's work, one DynamoDB stream record at a time (DESIGN §1, §4).

The messages table's stream is the outbox: whatever a webhook stored is processed here, and nothing else has
to remember to do it. Two kinds of records reach this code (the event source's FilterCriteria drop the rest):

- ``INSERT`` of an inbound message: auto-reply (``services.autoreply``), every ``pending`` media entry streamed
  to S3 (``pending → stored | failed``), then ``message.received`` on the bus. The message is read again by key
  first, so a retried or replayed record works from what is stored now (media already stored are skipped) and
  a replay needs nothing but the key.
- ``MODIFY`` of an outbound message whose ``status`` changed (the stream carries old and new images):
  ``message.status_changed``.

Every step is idempotent, so a record may be delivered any number of times: media updates are conditional
(``stored`` is never regressed), the auto-reply is claimed once per inbound message, and events carry the ids
subscribers deduplicate on (docs/events.md). Trouble that may go away (a provider or S3 hiccup, an event not
accepted) raises ``RetryableError`` once the other steps are done: the record is reported as a batch item
failure, retried by the stream with bisection, and dead-lettered when the retries are used up (``make replay``
re-drives it). Permanent trouble (a sha256 mismatch, a host off the allow-list, a media id the provider no
longer knows) is recorded on the message and the record succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Settings, get_settings
from gateway.credentials import CredentialsCipher, Secrets
from gateway.domain.channel import Channel
from gateway.domain.channel import Provider as ProviderName
from gateway.domain.errors import ChannelNotFound, ConversationNotFound
from gateway.events import MESSAGE_RECEIVED, MESSAGE_STATUS_CHANGED, EventPublisher
from gateway.media import SIZE_LIMITS, MediaError, MediaStreamer
from gateway.observability import logger, metrics
from gateway.providers import provider_for
from gateway.providers.base import Provider
from gateway.services.autoreply import AutoReplyRetry, AutoReplyService
from gateway.services.inbox import InboxService
from gateway.store.channels_repo import ChannelRepository
from gateway.store.conversations_repo import ConversationRepository
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import ConversationModel, MessageModel

TERMINAL_MEDIA = frozenset({"stored", "failed"})


class RetryableError(Exception):
    """Something that may work on the next delivery of the record: report it as a batch item failure."""


def media_key(tenant_id: str, conversation_id: str, message_id: str, index: int) -> str:
    """``<tenant>/<conversation>/<message>/<n>`` (DESIGN §3): a retry overwrites its own object, never another."""
    return f"{tenant_id}/{conversation_id}/{message_id}/{index}"


def media_kind(message_type: str, content_type: str | None) -> str:
    """The WhatsApp type whose size limit applies: a sticker is a sticker, otherwise the content type's family
    (a Twilio message can carry an image and a PDF), ``document`` for anything not image/audio/video."""
    if message_type == "sticker":
        return "sticker"
    family = (content_type or "").split("/", 1)[0].strip().lower()
    return family if family in SIZE_LIMITS and family != "sticker" else "document"


def _plain(entry: Any) -> dict[str, Any]:
    return dict(entry.as_dict() if hasattr(entry, "as_dict") else entry)


def _attr(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


@dataclass
class InboundProcessor:
    settings: Settings = field(default_factory=get_settings)
    channels: ChannelRepository = field(default_factory=ChannelRepository)
    conversations: ConversationRepository = field(default_factory=ConversationRepository)
    messages: MessageRepository = field(default_factory=MessageRepository)
    cipher: CredentialsCipher = field(default_factory=CredentialsCipher)
    events: EventPublisher = field(default_factory=EventPublisher)
    streamer: MediaStreamer | None = None
    autoreply: AutoReplyService | None = None
    providers: dict[str, Provider] = field(default_factory=dict)
    # Where Twilio posts status callbacks for auto-replies when PUBLIC_BASE_URL is empty (the API's own URL).
    fallback_base_url: str = ""
    _inbox: InboxService | None = None

    def __post_init__(self) -> None:
        if self.streamer is None:
            self.streamer = MediaStreamer(
                self.settings.media_allowed_hosts,
                self.settings.media_bucket,
                allow_loopback=self.settings.media_allow_loopback,
            )
        if self.autoreply is None:
            self.autoreply = AutoReplyService(
                messages=self.messages,
                conversations=self.conversations,
                events=self.events,
                public_base_url=self.settings.public_base_url or self.fallback_base_url,
            )
        self.autoreply.view = self.event_view

    # ------------------------------------------------------------------ dispatch
    def handle_record(self, record: dict[str, Any]) -> str:
        """Process one Lambda DynamoDB stream record; returns what was done (for logs and tests)."""
        stream = record.get("dynamodb") or {}
        new = stream.get("NewImage") or {}
        if _attr(new, "item_type") != "message":
            return "ignored"
        direction, event_name = _attr(new, "direction"), record.get("eventName")
        if event_name == "INSERT" and direction == "inbound":
            keys = stream.get("Keys") or {}
            return self.process_inbound(_attr(keys, "pk") or "", _attr(keys, "sk") or "")
        if event_name == "MODIFY" and direction == "outbound":
            return self.status_changed(stream.get("OldImage"), new)
        return "ignored"

    # ------------------------------------------------------------------ inbound messages
    def process_inbound(self, message_pk: str, message_sk: str) -> str:
        item = self.messages.get(message_pk, message_sk)
        if item is None:
            logger.warning("stream record for a message that is not stored", extra={"message_sk": message_sk})
            return "missing"
        channel = self._channel(item)
        conversation = self._conversation(item)
        provider = self._provider(channel.provider) if channel is not None else None
        secrets = self._secrets_once(channel)
        problems: list[str] = []

        if channel is not None and provider is not None and self.autoreply is not None:
            try:
                outcome = self.autoreply.handle(item, channel, conversation, provider, secrets)
                logger.debug("auto-reply outcome", extra={"action": outcome.action, "reason": outcome.reason})
            except AutoReplyRetry as error:
                problems.append(str(error))
            except Exception as error:
                logger.exception("auto-reply failed", extra={"message_id": item.message_id})
                problems.append(f"auto-reply: {type(error).__name__}")

        if any(_plain(m).get("status") not in TERMINAL_MEDIA for m in item.media or []):
            problems += self._store_media(item, channel, provider, secrets)
            item = self.messages.get(message_pk, message_sk) or item

        if not problems and not self._publish_received(item, channel, conversation):
            problems.append("message.received not accepted by EventBridge")
        if problems:
            raise RetryableError("; ".join(problems))
        return "processed"

    def _store_media(
        self, item: MessageModel, channel: Channel | None, provider: Provider | None, secrets: Callable[[], Secrets]
    ) -> list[str]:
        assert self.streamer is not None
        problems: list[str] = []
        for index, raw in enumerate(item.media or []):
            entry = _plain(raw)
            if entry.get("status") in TERMINAL_MEDIA:
                continue
            log = {"message_id": item.message_id, "media_index": index}
            key = media_key(item.tenant_id, item.conversation_id, item.message_id, index)
            try:
                if channel is None or provider is None:
                    raise MediaError("the channel no longer exists: no credentials to download with")
                request = provider.media_request(channel, secrets(), entry)
                stored = self.streamer.stream_to_s3(
                    request, key, kind=media_kind(item.type, request.content_type or entry.get("content_type"))
                )
            except MediaError as error:
                if error.retryable:
                    metrics.add_metric(name="MediaRetry", unit="Count", value=1)
                    logger.warning("media not stored yet, will retry", extra={**log, "reason": error.reason})
                    problems.append(f"media {index}: {error.reason}")
                    continue
                self.messages.media_failed(item.pk, item.sk, index, error.reason)
                metrics.add_metric(name="MediaFailed", unit="Count", value=1)
                logger.warning("media failed", extra={**log, "reason": error.reason})
                continue
            except Exception as error:  # DynamoDB, KMS...: unexpected, retried like the rest
                logger.exception("media processing failed", extra=log)
                problems.append(f"media {index}: {type(error).__name__}")
                continue
            self.messages.media_stored(
                item.pk, item.sk, index, s3_key=stored.key, size=stored.size, sha256=stored.sha256,
                content_type=stored.content_type,
            )
            metrics.add_metric(name="MediaStored", unit="Count", value=1)
            logger.info("media stored", extra={**log, "size": stored.size, "content_type": stored.content_type})
        return problems

    def _publish_received(
        self, item: MessageModel, channel: Channel | None, conversation: ConversationModel | None
    ) -> bool:
        published = self.events.publish(
            MESSAGE_RECEIVED,
            {
                "tenant_id": item.tenant_id,
                "channel_id": item.channel_id,
                "conversation_id": item.conversation_id,
                "provider": item.provider,
                "contact_phone": (item.sender or {}).get("id")
                or (conversation.contact_phone if conversation is not None else None),
                "contact_name": conversation.contact_name if conversation is not None else None,
                "location_id": channel.location_id if channel is not None else None,
                "message": self.event_view(item),
            },
        )
        if published:
            metrics.add_metric(name="MessageReceivedPublished", unit="Count", value=1)
        return published

    # ------------------------------------------------------------------ outbound status changes
    def status_changed(self, old_image: dict[str, Any] | None, new_image: dict[str, Any]) -> str:
        previous, current = _attr(old_image or {}, "status"), _attr(new_image, "status")
        if old_image is not None and previous == current:
            return "unchanged"
        item = MessageModel.from_raw_data(new_image)
        conversation = self._conversation(item)
        published = self.events.publish(
            MESSAGE_STATUS_CHANGED,
            {
                "tenant_id": item.tenant_id,
                "channel_id": item.channel_id,
                "conversation_id": item.conversation_id,
                "provider": item.provider,
                "contact_phone": conversation.contact_phone if conversation is not None else None,
                "previous_status": previous,
                "status": current,
                "message": self.event_view(item),
            },
        )
        if not published:
            raise RetryableError("message.status_changed not accepted by EventBridge")
        return "published"

    # ------------------------------------------------------------------ helpers
    def event_view(self, item: MessageModel) -> dict[str, Any]:
        """The API's message view, with media pointing at their S3 objects instead of presigned URLs: events
        outlive a presigned URL, and subscribers read the private bucket with their own IAM permissions."""
        if self._inbox is None:
            self._inbox = InboxService(conversations=self.conversations, messages=self.messages, settings=self.settings)
        view = self._inbox.message_view(item, presign=False)
        media = []
        for entry_view, raw in zip(view["media"], item.media or [], strict=True):
            entry = _plain(raw)
            stored = entry.get("status") == "stored" and entry.get("s3_key")
            media.append(
                {
                    **entry_view,
                    "url": None,
                    "s3_bucket": self.settings.media_bucket if stored else None,
                    "s3_key": entry.get("s3_key") if stored else None,
                }
            )
        view["media"] = media
        return view

    def _channel(self, item: MessageModel) -> Channel | None:
        try:
            return self.channels.get(item.tenant_id, item.channel_id)
        except ChannelNotFound:
            logger.warning("message of a channel that no longer exists", extra={"channel_id": item.channel_id})
            return None

    def _conversation(self, item: MessageModel) -> ConversationModel | None:
        try:
            return self.conversations.get(item.tenant_id, item.conversation_id)
        except ConversationNotFound:
            return None

    def _provider(self, name: ProviderName) -> Provider:
        if name.value not in self.providers:
            self.providers[name.value] = provider_for(name)
        return self.providers[name.value]

    def _secrets_once(self, channel: Channel | None) -> Callable[[], Secrets]:
        """Decrypt at most once per record, and only when something needs the credentials."""
        cache: list[Secrets] = []

        def get() -> Secrets:
            if channel is None:
                raise MediaError("the channel no longer exists: no credentials")
            if not cache:
                cache.append(self.cipher.decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext))
            return cache[0]

        return get
