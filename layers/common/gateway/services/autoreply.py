"""Auto-replies to inbound messages (DESIGN §4), run by the inbound processor.

Deciding (pure functions, unit-tested):

- mode: the conversation's ``bot_mode`` when set, else the channel's ``auto_reply.mode`` (default ``off``);
- nothing while an operator holds the conversation (``operator_lock_until`` in the future), for reactions and
  system notices, or for a message older than the 24-hour customer-service window (a replay days later);
- the reply: ``unsupported`` content → ``unsupported_notice``; otherwise the first rule with a keyword that
  appears in the text as a whole word, case-insensitively (Unicode-aware, see ``keyword_pattern``), else
  ``fallback``; no reply when the chosen one is null.

Doing, at most once per inbound message: the claim ``autoreply#<message_id>`` is taken in the idempotency table
with a conditional put BEFORE anything is stored or sent, so concurrent or repeated deliveries of the same
stream record (Lambda retries, bisected batches, replays) cannot reply twice. Shadow mode stores the reply as
an outbound message with status ``suggested`` and sends nothing; ``on`` stores it ``queued``, sends it through
the channel's provider, records the provider id (``sent``) and publishes ``message.sent``. Sender:
``{"kind": "auto", "id": "rule:<n>" | "fallback" | "unsupported_notice"}``.

Failures: a provider answer proving the message was NOT accepted (rate limit, unavailable, connection refused)
marks the claim ``resend`` and fails the record, so the stream's retry (or a replay) sends the same stored
message again; a permanent refusal or an unknown outcome stores the message ``failed`` and is never resent.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import ValidationError
from pynamodb.exceptions import UpdateError

from gateway.credentials import Secrets
from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.channel import AutoReplyConfig, AutoReplyRule, Channel
from gateway.domain.errors import ProviderError, ProviderUnavailable, SendOutcomeUnknown
from gateway.domain.outbound import Outbound
from gateway.events import MESSAGE_SENT, EventPublisher
from gateway.observability import logger, metrics
from gateway.providers.base import Provider
from gateway.store.contacts_repo import conversation_contact, recipient_of
from gateway.store.conversations_repo import ConversationRepository
from gateway.store.idempotency_repo import DONE, IN_PROGRESS, IdempotencyRepository, idempotency_pk
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import ConversationModel, IdempotencyModel, MessageModel, tenant_pk

Mode = Literal["on", "shadow", "off"]
MODES: frozenset[str] = frozenset({"on", "shadow", "off"})
SCOPE = "autoreply"
SUGGESTED = "suggested"
# Free-form replies are only deliverable within 24 h of the contact's message; older messages (a replay of
# dead letters days later) get no reply at all rather than a confusing late one.
REPLY_WINDOW = timedelta(hours=24)
# Claims outlive every way a record can come back: stream retention (24 h), the reply window, DLQ replays.
CLAIM_TTL_SECONDS = 15 * 24 * 3600
# Types that never get an auto-reply: a reaction or a system notice (number changed...) is not a question.
NO_REPLY_TYPES = frozenset({"reaction", "system"})


# ---------------------------------------------------------------------------------------------- deciding
def _normalize(text: str) -> str:
    """NFKC (composed and decomposed accents, full-width letters compare equal) then Unicode case folding
    (``STRASSE`` matches ``straße``)."""
    return unicodedata.normalize("NFKC", text).casefold()


# Scripts written without spaces between words: a keyword edge in one of them needs no word boundary, or
# "价格" could never match inside "价格是多少".
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


@lru_cache(maxsize=4096)
def keyword_pattern(keyword: str) -> re.Pattern[str] | None:
    """The regex that finds ``keyword`` as a whole word (or phrase: inner whitespace matches any whitespace)
    in normalized text. None for a blank keyword."""
    words = _normalize(keyword).split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    first, last = words[0][0], words[-1][-1]
    before = "" if _UNSPACED.match(first) else r"(?<!\w)"
    after = "" if _UNSPACED.match(last) else r"(?!\w)"
    return re.compile(f"{before}{body}{after}")


def matching_rule(text: str | None, rules: Sequence[AutoReplyRule]) -> int | None:
    """Index of the first rule with a keyword in ``text`` as a whole word, case-insensitively; else None."""
    if not text:
        return None
    normalized = _normalize(text)
    for index, rule in enumerate(rules):
        for keyword in rule.keywords:
            pattern = keyword_pattern(keyword)
            if pattern is not None and pattern.search(normalized):
                return index
    return None


@dataclass(frozen=True)
class Reply:
    text: str
    source: str  # "rule:<n>" | "fallback" | "unsupported_notice"


def choose_reply(config: AutoReplyConfig, message_type: str, text: str | None) -> Reply | None:
    if message_type == "unsupported":
        return Reply(config.unsupported_notice, "unsupported_notice") if config.unsupported_notice else None
    index = matching_rule(text, config.rules)
    if index is not None:
        return Reply(config.rules[index].reply, f"rule:{index}")
    return Reply(config.fallback, "fallback") if config.fallback else None


def resolve_mode(channel_mode: str | None, bot_mode: str | None) -> Mode:
    """The conversation's ``bot_mode`` overrides the channel's mode; anything unknown counts as ``off``."""
    mode = bot_mode if bot_mode in MODES else channel_mode
    return mode if mode in ("on", "shadow") else "off"  # type: ignore[return-value]


def operator_locked(lock_until: str | None, now: datetime) -> bool:
    if not lock_until:
        return False
    try:
        return ids.parse_iso(lock_until) > now
    except ValueError:
        return False


def auto_reply_config(raw: dict[str, Any] | None) -> AutoReplyConfig:
    """The channel's stored configuration; an unreadable one (should not happen: the API validates) is ``off``."""
    try:
        return AutoReplyConfig.model_validate(raw or {})
    except ValidationError:
        logger.warning("unreadable auto_reply configuration: treated as off")
        return AutoReplyConfig()


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reply: Reply | None
    skipped: str | None = None  # why nothing is done


def decide(
    channel: Channel, conversation: ConversationModel | None, message_type: str, text: str | None,
    created_at: str | None, now: datetime,
) -> Decision:
    config = auto_reply_config(channel.auto_reply)
    mode = resolve_mode(config.mode, conversation.bot_mode if conversation is not None else None)
    if mode == "off":
        return Decision(mode, None, "off")
    if not channel.active:
        return Decision(mode, None, "channel_disabled")
    if conversation is None:
        return Decision(mode, None, "no_conversation")
    if conversation.kind == "group":  # never in a group, never privately to a member (docs/decisions.md)
        return Decision(mode, None, "group")
    if operator_locked(conversation.operator_lock_until, now):
        return Decision(mode, None, "operator_lock")
    if message_type in NO_REPLY_TYPES:
        return Decision(mode, None, "type")
    if created_at and now - ids.parse_iso(created_at) > REPLY_WINDOW:
        return Decision(mode, None, "too_old")
    reply = choose_reply(config, message_type, text)
    return Decision(mode, reply, None if reply else "no_reply")


# ---------------------------------------------------------------------------------------------- doing
class AutoReplyRetry(Exception):
    """The reply was certainly not accepted and is worth another try: the stream record should be retried."""


@dataclass(frozen=True)
class AutoReplyOutcome:
    action: str  # "sent" | "suggested" | "failed" | "skipped" | "duplicate"
    reason: str | None = None
    message_id: str | None = None


@dataclass
class AutoReplyService:
    messages: MessageRepository = field(default_factory=MessageRepository)
    conversations: ConversationRepository = field(default_factory=ConversationRepository)
    idempotency: IdempotencyRepository = field(default_factory=lambda: IdempotencyRepository(CLAIM_TTL_SECONDS))
    events: EventPublisher = field(default_factory=EventPublisher)
    public_base_url: str = ""
    clock: Callable[[], datetime] = ids.utcnow
    view: Callable[[MessageModel], dict[str, Any]] = field(default=lambda item: {"id": item.message_id})

    def handle(
        self,
        inbound: MessageModel,
        channel: Channel,
        conversation: ConversationModel | None,
        provider: Provider,
        secrets: Callable[[], Secrets],
    ) -> AutoReplyOutcome:
        now = self.clock()
        decision = decide(channel, conversation, inbound.type, inbound.text, inbound.created_at, now)
        if decision.reply is None or conversation is None:
            return AutoReplyOutcome("skipped", decision.skipped)
        if decision.mode == "on":
            # Credentials first: a KMS failure must happen before anything is claimed or stored, so that the
            # record's retry starts from scratch (a claim taken without a send would mean no reply, ever).
            credentials = secrets()
            secrets = lambda: credentials  # noqa: E731 - the one decrypted value, for every step below
        pk = idempotency_pk(inbound.tenant_id, SCOPE, inbound.message_id)
        fingerprint = hashlib.sha256(f"{decision.mode}\x1f{decision.reply.text}".encode()).hexdigest()
        claim = self.idempotency.claim(pk, fingerprint, now=int(now.timestamp()))
        if claim.kind == "existing":
            return self._existing(claim.item, inbound, channel, conversation, provider, secrets)
        stored: MessageModel | None = None
        try:
            if decision.mode == "shadow":
                stored = self._store(inbound, channel, decision.reply, status=SUGGESTED)
                self.idempotency.complete(claim.item, 200, {"mode": "shadow", "message_id": stored.message_id})
                metrics.add_metric(name="AutoReplySuggested", unit="Count", value=1)
                logger.info("auto-reply suggested (shadow mode)", extra=self._log(inbound, stored, decision.reply))
                return AutoReplyOutcome("suggested", message_id=stored.message_id)
            stored = self._store(inbound, channel, decision.reply, status=st.QUEUED)
            self.idempotency.set_pending(claim.item, {"message_pk": stored.pk, "message_sk": stored.sk})
        except BaseException:
            # Nothing was sent: remove what was stored (the retry stores the reply afresh, under a new sort key;
            # left here it would stay queued forever) and free the claim so that the retry can reply.
            if stored is not None:
                try:
                    stored.delete()
                except Exception:
                    logger.exception("could not remove an unsent auto-reply", extra={"message_id": stored.message_id})
            try:
                self.idempotency.release(claim.item)
            except Exception:
                logger.exception("could not release an auto-reply claim")
            raise
        return self._send(claim.item, stored, inbound, channel, conversation, provider, secrets)

    # ------------------------------------------------------------------ steps
    def _existing(
        self,
        claim: IdempotencyModel,
        inbound: MessageModel,
        channel: Channel,
        conversation: ConversationModel,
        provider: Provider,
        secrets: Callable[[], Secrets],
    ) -> AutoReplyOutcome:
        """Someone handled (or is handling) this message. Only a send that certainly did not go out is taken
        over (conditionally: one taker, and the mark cleared with it) and resent; a send whose provider answer
        is known but could not be recorded is taken over the same way and recorded, never resent; everything
        else is left alone."""
        pending = (claim.result or {}).get("pending") or {}
        if claim.state == IN_PROGRESS and (pending.get("provider_message_id") or pending.get("failed")):
            mine = self._take_over_resend(claim, pending)
            if mine is None:
                return AutoReplyOutcome("duplicate", "taken over by another delivery")
            item = self.messages.get(pending["message_pk"], pending["message_sk"])
            if item is None:
                self.idempotency.complete(mine, 200, {"mode": "on", "message_id": None})
                return AutoReplyOutcome("duplicate", "already settled")
            if pending.get("provider_message_id"):
                return self._record_sent(
                    mine, item, inbound, channel, conversation, str(pending["provider_message_id"]),
                    str(pending.get("provider_status") or st.SENT), str(pending.get("at") or ""),
                )
            return self._record_failed(mine, item, inbound, dict(pending["failed"]))
        if claim.state != IN_PROGRESS or not pending.get("resend"):
            metrics.add_metric(name="AutoReplyDuplicate", unit="Count", value=1)
            return AutoReplyOutcome("duplicate", "already handled" if claim.state == DONE else "in progress")
        mine = self._take_over_resend(claim, pending)
        if mine is None:
            return AutoReplyOutcome("duplicate", "taken over by another delivery")
        item = self.messages.get(pending["message_pk"], pending["message_sk"])
        if item is None or item.status != st.QUEUED:
            self.idempotency.complete(mine, 200, {"mode": "on", "message_id": item.message_id if item else None})
            return AutoReplyOutcome("duplicate", "already settled")
        return self._send(mine, item, inbound, channel, conversation, provider, secrets)

    def _take_over_resend(self, claim: IdempotencyModel, pending: dict[str, Any]) -> IdempotencyModel | None:
        """One conditional update: clear the ``resend`` mark and move ``expires_at`` (the claim's version) to a
        new value, conditioned on the version read. Of concurrent deliveries that saw the mark, exactly one gets
        the claim; later readers no longer see the mark."""
        version = int(claim.expires_at)
        mine = IdempotencyModel(claim.pk)
        try:
            mine.update(
                actions=[
                    IdempotencyModel.result.set({"pending": {k: v for k, v in pending.items() if k != "resend"}}),
                    IdempotencyModel.expires_at.set(max(int(self.clock().timestamp()) + CLAIM_TTL_SECONDS,
                                                        version + 1)),
                ],
                condition=(IdempotencyModel.state == IN_PROGRESS) & (IdempotencyModel.expires_at == version),
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return mine

    def _store(self, inbound: MessageModel, channel: Channel, reply: Reply, *, status: str) -> MessageModel:
        outbound = Outbound("text", text=reply.text)
        return self.messages.record_outbound(
            channel,
            conversation_id=inbound.conversation_id,
            type="text",
            sender={"kind": "auto", "id": reply.source},
            text=reply.text,
            content={**(outbound.content() or {}), "in_reply_to": inbound.message_id},
            message_id=ids.stable_id("msg", inbound.tenant_id, SCOPE, inbound.message_id),
            now=ids.iso(self.clock()),
            status=status,
        )

    def _send(
        self,
        claim: IdempotencyModel,
        item: MessageModel,
        inbound: MessageModel,
        channel: Channel,
        conversation: ConversationModel,
        provider: Provider,
        secrets: Callable[[], Secrets],
    ) -> AutoReplyOutcome:
        pending = {"message_pk": item.pk, "message_sk": item.sk}
        callback = f"{self.public_base_url}/webhooks/twilio/status" if self.public_base_url else None
        try:
            result = provider.send(
                channel, secrets(), recipient_of(conversation), Outbound("text", text=item.text),
                status_callback_url=callback,
            )
        except ProviderError as error:
            if isinstance(error, ProviderUnavailable) and error.retryable and not isinstance(error, SendOutcomeUnknown):
                # Certainly not accepted: keep the message queued and let the stream retry send it again.
                self.idempotency.set_pending(claim, {**pending, "resend": True})
                metrics.add_metric(name="AutoReplyRetry", unit="Count", value=1)
                raise AutoReplyRetry(f"auto-reply not accepted yet: {error.normalized_code}") from error
            normalized = error.as_error()
            try:
                return self._record_failed(claim, item, inbound, normalized)
            except Exception:
                self._remember_outcome(claim, pending, {"failed": normalized})
                raise
        at = ids.iso(self.clock())
        try:
            return self._record_sent(claim, item, inbound, channel, conversation, result.provider_message_id,
                                     result.status, at)
        except Exception:
            self._remember_outcome(claim, pending, {"provider_message_id": result.provider_message_id,
                                                    "provider_status": result.status, "at": at})
            raise

    def _remember_outcome(self, claim: IdempotencyModel, pending: dict[str, Any], outcome: dict[str, Any]) -> None:
        """The provider answered but the answer could not be recorded: keep it on the claim, so that the retry of
        the record (which fails now) records it instead of leaving the reply ``queued`` forever. Never resent."""
        metrics.add_metric(name="AutoReplyNotRecorded", unit="Count", value=1)
        try:
            self.idempotency.set_pending(claim, {**pending, **outcome})
        except Exception:
            logger.exception("could not keep the provider's answer to an auto-reply on its claim")

    def _record_failed(
        self, claim: IdempotencyModel, item: MessageModel, inbound: MessageModel, normalized: dict[str, Any]
    ) -> AutoReplyOutcome:
        self.messages.fail_outbound(item.pk, item.sk, normalized, at=ids.iso(self.clock()))
        self.idempotency.complete(claim, 200, {"mode": "on", "message_id": item.message_id, "error": normalized})
        metrics.add_metric(name="AutoReplyFailed", unit="Count", value=1)
        logger.warning(
            "auto-reply not sent",
            extra={**self._log(inbound, item, None), "error_code": normalized.get("code"),
                   "provider_code": normalized.get("provider_code")},
        )
        return AutoReplyOutcome("failed", str(normalized.get("code")), item.message_id)

    def _record_sent(
        self,
        claim: IdempotencyModel,
        item: MessageModel,
        inbound: MessageModel,
        channel: Channel,
        conversation: ConversationModel,
        provider_message_id: str,
        status: str,
        at: str,
    ) -> AutoReplyOutcome:
        """The provider accepted the reply: record its id (merging a status that came first), close the claim,
        update the inbox, publish ``message.sent``. Idempotent (a retry after a failure here runs it again)."""
        at = at or ids.iso(self.clock())
        final = self.messages.attach_provider_id(
            inbound.tenant_id, channel.provider.value, provider_message_id, item.pk, item.sk, status=status, at=at,
        )
        self.idempotency.complete(claim, 201, {"mode": "on", "message_id": item.message_id})
        self._touch_conversation(inbound.tenant_id, inbound.conversation_id, item.text, at)
        if final == status:
            item.provider_message_id, item.status, item.status_rank = provider_message_id, final, st.RANK[final]
            item.status_updated_at = at
            stored = item
        else:  # a status callback beat the send's answer and was merged: show what is stored
            stored = self.messages.get(item.pk, item.sk) or item
        self.events.publish(
            MESSAGE_SENT,
            {
                "tenant_id": inbound.tenant_id,
                "channel_id": channel.channel_id,
                "conversation_id": inbound.conversation_id,
                "provider": channel.provider.value,
                "contact_phone": conversation.contact_phone,
                "contact": conversation_contact(conversation),
                "message": self.view(stored),
            },
        )
        metrics.add_metric(name="AutoReplySent", unit="Count", value=1)
        logger.info("auto-reply sent", extra=self._log(inbound, stored, None))
        return AutoReplyOutcome("sent", message_id=item.message_id)

    def _touch_conversation(self, tenant_id: str, conversation_id: str, text: str | None, at: str) -> None:
        """Inbox activity for the reply; unlike an operator send it sets no operator lock."""
        try:
            self.conversations.update(
                tenant_id,
                conversation_id,
                [
                    ConversationModel.last_message_at.set(at),
                    ConversationModel.last_message_preview.set((text or "")[:120]),
                    ConversationModel.gsi1pk.set(tenant_pk(tenant_id)),
                    ConversationModel.gsi1sk.set(ConversationModel.activity_key(at, conversation_id)),
                ],
            )
        except Exception:  # the reply is sent and recorded; the inbox order is cosmetic
            logger.exception("could not update the conversation's activity after an auto-reply")

    @staticmethod
    def _log(inbound: MessageModel, item: MessageModel, reply: Reply | None) -> dict[str, Any]:
        return {
            "tenant_id": inbound.tenant_id,
            "conversation_id": inbound.conversation_id,
            "in_reply_to": inbound.message_id,
            "message_id": item.message_id,
            "source": reply.source if reply else (item.sender or {}).get("id"),
        }
