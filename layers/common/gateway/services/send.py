"""Sending from the tenant's frontend: ``POST /v1/conversations/{id}/messages`` (DESIGN §2).

What happens, in order (each step's failure is its own answer):

1. ``Idempotency-Key`` (optional): the key is claimed with a conditional put (``in_progress``). Same key and same
   body → the first answer, nothing sent again (a concurrent duplicate waits for it); another body → 409. Only
   answers given once the send started executing (the provider was called) are kept: a refusal that changed
   nothing (404, 409 ``channel_disabled``, 422 before the provider call) releases the key for a corrected retry.
2. The conversation is read under the caller's tenant (another tenant's id answers 404 like a missing one), its
   channel must be active, the provider must be able to express the request (422 ``validation_error``).
3. Free-form messages need the 24-hour customer-service window, counted from the contact's last inbound
   message (422 ``outside_customer_service_window``); templates and read receipts do not.
4. The message is stored ``queued`` BEFORE the provider is called, and the conversation gets its activity and
   the operator lock (auto-replies pause) — so a crash can never leave a sent message that we do not know.
5. The provider is called. Transient refusals (rate limits, "unavailable" answers: requests the provider
   certainly did not accept) are retried with bounded exponential backoff and full jitter. Nothing that the
   provider may have accepted is ever resent: a timeout after the request went out is ``outcome_unknown``.
6. Accepted → provider id recorded with status ``sent`` (merging a status callback that came first), 201, a
   ``message.sent`` event. Refused for good → message ``failed`` with the normalized error, 422
   ``provider_rejected``. Transient until the retries ran out, or outcome unknown → ``failed``, 502
   ``provider_unavailable``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.config import Settings, get_settings
from gateway.credentials import CredentialsCipher, Secrets
from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.channel import Channel
from gateway.domain.channel import Provider as ProviderName
from gateway.domain.errors import (
    ChannelDisabled,
    ChannelNotFound,
    DomainError,
    IdempotencyConflict,
    IdempotencyInProgress,
    OutsideServiceWindow,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    SendOutcomeUnknown,
    ValidationFailed,
)
from gateway.domain.outbound import Outbound, ProviderSendResult, Template
from gateway.egress import UnsafeUrl, parse_strict
from gateway.events import MESSAGE_SENT, EventPublisher
from gateway.http.errors import status_for
from gateway.observability import logger, metrics
from gateway.providers import provider_for
from gateway.providers.base import Provider as ProviderPort
from gateway.services.inbox import InboxService
from gateway.store.channels_repo import ChannelRepository
from gateway.store.conversations_repo import ConversationRepository
from gateway.store.idempotency_repo import DONE, IdempotencyRepository, idempotency_pk
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import ConversationModel, IdempotencyModel, MessageModel, tenant_pk

SERVICE_WINDOW = timedelta(hours=24)
DEFAULT_OPERATOR_LOCK_MINUTES = 30
IDEMPOTENCY_SCOPE = "send"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


# ------------------------------------------------------------------------------------------ request bodies
def _https_url(value: str) -> str:
    """The provider fetches it, not us, but it is read like every URL the gateway handles (gateway/egress.py):
    no backslash, user name, whitespace or control character that parsers could read apart."""
    try:
        url = parse_strict(value)
    except UnsafeUrl as error:
        raise ValueError(f"must be an https:// URL the provider can fetch ({error})") from None
    if url.scheme != "https":
        raise ValueError("must be an https:// URL the provider can fetch")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


HttpsUrl = Annotated[str, Field(min_length=9, max_length=2048), AfterValidator(_https_url)]
Caption = Annotated[str, Field(min_length=1, max_length=1024)]
MessageRef = Annotated[str, Field(min_length=1, max_length=256, description="Our message id or its provider id")]


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid", title="TextMessageIn")

    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_not_blank)]
    preview_url: bool = False


class MediaIn(BaseModel):
    """Media by link: the provider fetches ``media_url`` (Meta: image/document/video carry a caption, documents a
    filename; Twilio sends the caption as the message body)."""

    model_config = ConfigDict(extra="forbid", title="MediaMessageIn")

    type: Literal["image", "document", "audio", "video"]
    media_url: HttpsUrl
    caption: Caption | None = None
    filename: Annotated[str, Field(min_length=1, max_length=240)] | None = None


class MetaTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", examples=["en_US"])]
    components: Annotated[list[dict[str, Any]], Field(max_length=20)] = Field(default_factory=list)


class TwilioTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_sid: Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]
    variables: Annotated[dict[str, Annotated[str, Field(max_length=1024)]], Field(max_length=100)] = Field(
        default_factory=dict
    )


class TemplateIn(BaseModel):
    """Allowed outside the 24-hour window. Meta channels: ``{name, language, components}``; Twilio channels:
    ``{content_sid: "HX…", variables: {"1": "…"}}``."""

    model_config = ConfigDict(extra="forbid", title="TemplateMessageIn")

    type: Literal["template"]
    template: MetaTemplateIn | TwilioTemplateIn


class ReactionIn(BaseModel):
    """Meta channels: react to a message of the conversation (``emoji`` empty removes the reaction)."""

    model_config = ConfigDict(extra="forbid", title="ReactionMessageIn")

    type: Literal["reaction"]
    message_id: MessageRef
    emoji: Annotated[str, Field(max_length=16)]


class ReadIn(BaseModel):
    """Meta channels: mark the contact's message as read (blue ticks); nothing is stored, answers 200."""

    model_config = ConfigDict(extra="forbid", title="ReadReceiptIn")

    type: Literal["read"]
    message_id: MessageRef


SendMessageIn = Annotated[TextIn | MediaIn | TemplateIn | ReactionIn | ReadIn, Field(discriminator="type")]
SendBody = TextIn | MediaIn | TemplateIn | ReactionIn | ReadIn


def to_outbound(body: SendBody) -> Outbound:
    if isinstance(body, TextIn):
        return Outbound("text", text=body.text, preview_url=body.preview_url)
    if isinstance(body, MediaIn):
        return Outbound(body.type, media_url=body.media_url, caption=body.caption, filename=body.filename)
    if isinstance(body, TemplateIn):
        spec = body.template
        if isinstance(spec, TwilioTemplateIn):
            return Outbound("template", template=Template(content_sid=spec.content_sid, variables=spec.variables))
        template = Template(name=spec.name, language=spec.language, components=spec.components)
        return Outbound("template", template=template)
    if isinstance(body, ReactionIn):
        return Outbound("reaction", emoji=body.emoji, target_message_id=body.message_id)
    return Outbound("read", target_message_id=body.message_id)


def request_fingerprint(conversation_id: str, body: SendBody) -> str:
    """Same conversation + same body (defaults filled in, key order irrelevant) → same fingerprint."""
    canonical = json.dumps(
        {"conversation_id": conversation_id, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class SendResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def error_body(error: DomainError, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        payload["field"] = error.field
    if isinstance(error, ProviderError):
        payload["provider_error"] = error.as_error()
    return {"error": {**payload, **extra}}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter: before retry n (1-based) sleep U(0, min(cap, base·2^(n-1))).

    ``budget_seconds`` bounds the whole send (the HTTP API integration gives up after 30 s): no retry starts that
    could not finish, counting one full provider timeout, within it."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 4.0
    budget_seconds: float = 20.0

    def delay(self, retry_number: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (retry_number - 1)))


@dataclass
class _Progress:
    """What a run has done so far, for the idempotency bookkeeping: ``provider_called`` is the point from which
    an answer is kept (docs/decisions.md D10)."""

    stored: Callable[[dict[str, Any]], None] | None = None
    provider_called: bool = False


# ------------------------------------------------------------------------------------------ service
@dataclass
class SendService:
    conversations: ConversationRepository = field(default_factory=ConversationRepository)
    channels: ChannelRepository = field(default_factory=ChannelRepository)
    messages: MessageRepository = field(default_factory=MessageRepository)
    idempotency: IdempotencyRepository = field(default_factory=IdempotencyRepository)
    cipher: CredentialsCipher = field(default_factory=CredentialsCipher)
    events: EventPublisher = field(default_factory=EventPublisher)
    settings: Settings = field(default_factory=get_settings)
    providers: dict[str, ProviderPort] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = ids.utcnow
    rng: random.Random = field(default_factory=random.Random)
    # A duplicate arriving while the first request runs waits this long for its answer, then gets a 409.
    in_progress_wait_seconds: float = 10.0
    # An ``in_progress`` key older than this belongs to a request that died (the function timeout is 29 s).
    abandoned_after_seconds: int = 120
    _inbox: InboxService | None = None

    # ------------------------------------------------------------------ entry point
    def send(
        self,
        tenant_id: str,
        operator_id: str,
        conversation_id: str,
        body: SendBody,
        *,
        public_base_url: str,
        idempotency_key: str | None = None,
    ) -> SendResult:
        outbound = to_outbound(body)
        run = _Run(self, tenant_id, operator_id, conversation_id, outbound, public_base_url)
        if idempotency_key is None:
            return run.execute(_Progress())
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValidationFailed(
                "Idempotency-Key: 1 to 255 printable ASCII characters without spaces", field="Idempotency-Key"
            )
        pk = idempotency_pk(tenant_id, IDEMPOTENCY_SCOPE, idempotency_key)
        fingerprint = request_fingerprint(conversation_id, body)
        give_up = self.monotonic() + self.in_progress_wait_seconds
        while True:
            claim = self.idempotency.claim(pk, fingerprint, now=self._epoch())
            if claim.kind == "new":
                return self._run_claimed(run, claim.item)
            item = claim.item
            if item.request_hash != fingerprint:
                raise IdempotencyConflict(
                    "This Idempotency-Key was already used with another request body (keys are kept 24 h)."
                )
            if item.state == DONE:
                result = item.result or {}
                metrics.add_metric(name="IdempotentReplay", unit="Count", value=1)
                return SendResult(int(result["status_code"]), dict(result["body"]), replayed=True)
            started = int(item.expires_at) - self.idempotency.ttl_seconds
            if self._epoch() - started > self.abandoned_after_seconds:
                mine = self.idempotency.take_over(item, now=self._epoch())
                if mine is not None:
                    return self._recover(run, mine, item)
                continue
            if self.monotonic() >= give_up:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still being processed; retry in a few seconds."
                )
            self.sleep(0.2)

    def _run_claimed(self, run: _Run, item: IdempotencyModel) -> SendResult:
        progress = _Progress(stored=lambda pending: self.idempotency.set_pending(item, pending))
        try:
            result = run.execute(progress)
        except BaseException:
            # Unexpected failure. Before the provider call nothing was sent: the key is released so a retry
            # can run. After it, the key stays in_progress with the stored message: a retry recovers from it
            # (``_recover``) instead of risking a second send.
            if not progress.provider_called:
                self._release(item)
            raise
        if not progress.provider_called:
            # Refused before the send started (conversation not found, channel disabled, validation, outside the
            # window): nothing changed, so the answer is not kept for 24 h; the same key works once corrected.
            self._release(item)
            return result
        try:
            self.idempotency.complete(item, result.status_code, result.body)
        except Exception:
            # The answer stands (the message may well have been sent: a 5xx now would invite a resend). The key
            # stays in_progress holding the stored message: a retry waits, then recovers from the message.
            logger.exception("could not record the answer of an idempotency key")
            metrics.add_metric(name="IdempotencyNotRecorded", unit="Count", value=1)
        return result

    def _release(self, item: IdempotencyModel) -> None:
        try:
            self.idempotency.release(item)
        except Exception:
            logger.exception("could not release an idempotency key")

    def _recover(self, run: _Run, mine: IdempotencyModel, abandoned: IdempotencyModel) -> SendResult:
        """Finish the answer of a request that died. If it had stored a message, that message's fate decides:
        provider id known → 201; still ``queued`` → it may or may not have gone out: ``failed`` with
        ``outcome_unknown``, never resent."""
        pending = (abandoned.result or {}).get("pending")
        message = self.messages.get(pending["message_pk"], pending["message_sk"]) if pending else None
        if message is None:
            return self._run_claimed(run, mine)  # died before storing anything: nothing was sent
        if message.provider_message_id:
            result = SendResult(201, self.view(message))
        else:
            if message.status == st.QUEUED:
                unknown = SendOutcomeUnknown(
                    "The request handling this send stopped before the provider's answer was recorded; the "
                    "message may or may not have been accepted, so it was not resent.",
                    normalized_code="outcome_unknown",
                )
                self.messages.fail_outbound(message.pk, message.sk, unknown.as_error())
                message = self.messages.get(message.pk, message.sk) or message
            error = ProviderUnavailable(
                "The message could not be confirmed as sent.",
                provider_code=(message.error or {}).get("provider_code"),
                retryable=bool((message.error or {}).get("retryable")),
                normalized_code=str((message.error or {}).get("code") or "outcome_unknown"),
            )
            result = SendResult(502, error_body(error, message_id=message.message_id))
        self.idempotency.complete(mine, result.status_code, result.body)
        return result

    # ------------------------------------------------------------------ helpers used by runs
    def _epoch(self) -> int:
        return int(self.clock().timestamp())

    def provider(self, name: ProviderName) -> ProviderPort:
        if name.value not in self.providers:
            self.providers[name.value] = provider_for(name)
        return self.providers[name.value]

    def view(self, item: MessageModel) -> dict[str, Any]:
        if self._inbox is None:
            self._inbox = InboxService(conversations=self.conversations, messages=self.messages, settings=self.settings)
        return self._inbox.message_view(item)

    def channel(self, tenant_id: str, channel_id: str) -> Channel:
        try:
            channel = self.channels.get(tenant_id, channel_id)
        except ChannelNotFound as error:
            raise ChannelDisabled("The conversation's channel no longer exists.") from error
        if not channel.active:
            raise ChannelDisabled("The conversation's channel is disabled; enable it to send.")
        return channel

    def secrets(self, channel: Channel) -> Secrets:
        return self.cipher.decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext)

    def call_provider(self, action: Callable[[], ProviderSendResult | None], *, what: str) -> ProviderSendResult | None:
        """Run one provider call with the retry policy; re-raises the last error when giving up."""
        started = self.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except ProviderUnavailable as error:
                if isinstance(error, SendOutcomeUnknown) or not error.retryable or attempt >= self.retry.max_attempts:
                    raise
                delay = self.retry.delay(attempt, self.rng)
                elapsed = self.monotonic() - started
                if elapsed + delay + self.settings.provider_timeout_seconds > self.retry.budget_seconds:
                    raise
                logger.info(
                    "transient provider error, retrying",
                    extra={
                        "what": what,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                        "provider_code": error.provider_code,
                        "error_code": error.normalized_code,
                    },
                )
                metrics.add_metric(name="ProviderRetry", unit="Count", value=1)
                self.sleep(delay)


@dataclass
class _Run:
    """One send request after the idempotency gate."""

    service: SendService
    tenant_id: str
    operator_id: str
    conversation_id: str
    outbound: Outbound
    public_base_url: str

    def execute(self, progress: _Progress) -> SendResult:
        try:
            return self._execute(progress)
        except DomainError as error:
            return SendResult(status_for(error), error_body(error))

    def _execute(self, progress: _Progress) -> SendResult:
        svc = self.service
        conversation = svc.conversations.get(self.tenant_id, self.conversation_id)
        channel = svc.channel(self.tenant_id, conversation.channel_id)
        provider = svc.provider(channel.provider)
        provider.check_outbound(self.outbound)
        now = svc.clock()
        if self.outbound.free_form:
            self._check_window(conversation, now)
        outbound = self.outbound
        target: MessageModel | None = None
        if outbound.target_message_id is not None:
            target = svc.messages.find_in_conversation(
                self.tenant_id, self.conversation_id, channel.provider.value, outbound.target_message_id
            )
            if target is None or not target.provider_message_id:
                raise ValidationFailed(
                    "message_id: no message with this id (or provider id) in the conversation", field="message_id"
                )
            outbound = replace(outbound, target_provider_message_id=target.provider_message_id)
        secrets = svc.secrets(channel)
        if outbound.type == "read":
            assert target is not None
            return self._mark_read(progress, provider, channel, secrets, target)
        return self._send(progress, provider, channel, secrets, conversation, outbound, now)

    @staticmethod
    def _check_window(conversation: ConversationModel, now: datetime) -> None:
        last = conversation.last_inbound_at
        if last and now - ids.parse_iso(last) < SERVICE_WINDOW:
            return
        when = f"last wrote at {last}" if last else "has never written"
        raise OutsideServiceWindow(
            f"The contact {when}: free-form messages are only allowed within 24 hours of the contact's last "
            "message. Send a template instead."
        )

    def _mark_read(
        self, progress: _Progress, provider: ProviderPort, channel: Channel, secrets: Secrets, target: MessageModel
    ) -> SendResult:
        svc = self.service
        pmid = str(target.provider_message_id)

        def call() -> None:
            provider.mark_read(channel, secrets, pmid)

        progress.provider_called = True
        try:
            svc.call_provider(call, what="mark_read")
        except ProviderError as error:
            return SendResult(*self._failure_answer(error, None))
        svc.conversations.update(self.tenant_id, self.conversation_id, [ConversationModel.unread_count.set(0)])
        return SendResult(200, svc.view(target))

    def _send(
        self,
        progress: _Progress,
        provider: ProviderPort,
        channel: Channel,
        secrets: Secrets,
        conversation: ConversationModel,
        outbound: Outbound,
        now: datetime,
    ) -> SendResult:
        svc = self.service
        now_iso = ids.iso(now)
        item = svc.messages.record_outbound(
            channel,
            conversation_id=self.conversation_id,
            type=outbound.type,
            sender={"kind": "operator", "id": self.operator_id},
            text=outbound.stored_text(),
            content=outbound.content(),
            message_id=ids.new_id("msg"),
            now=now_iso,
        )
        try:
            if progress.stored is not None:
                progress.stored({"message_pk": item.pk, "message_sk": item.sk, "message_id": item.message_id})
            self._touch_conversation(channel, outbound, now)
        except Exception:
            svc.messages.fail_outbound(
                item.pk,
                item.sk,
                {"code": "internal_error", "provider_code": None, "message": "Not sent: storage failed.",
                 "retryable": True},
            )
            raise

        status_callback_url = f"{self.public_base_url}/webhooks/twilio/status" if self.public_base_url else None

        def call() -> ProviderSendResult:
            return provider.send(
                channel, secrets, conversation.contact_phone, outbound, status_callback_url=status_callback_url
            )

        progress.provider_called = True
        try:
            result = svc.call_provider(call, what="send")
        except ProviderError as error:
            return self._failed(item, error)
        assert result is not None
        at = ids.iso(svc.clock())
        try:
            final = svc.messages.attach_provider_id(
                self.tenant_id, channel.provider.value, result.provider_message_id, item.pk, item.sk,
                status=result.status, at=at,
            )
        except Exception:
            # The provider accepted the message: it is sent, whatever our bookkeeping says. A 5xx here would make
            # the client send it again (a duplicate on the contact's phone), so the answer is the truth (201) and
            # the gap is logged with both ids for reconciliation (the stored message stays ``queued``).
            logger.exception(
                "message sent but its provider id could not be recorded",
                extra={"message_id": item.message_id, "provider_message_id": result.provider_message_id},
            )
            metrics.add_metric(name="SendNotRecorded", unit="Count", value=1)
            final = result.status
        if final == result.status:
            item.provider_message_id = result.provider_message_id
            item.status = final
            item.status_rank = st.RANK[final]
            item.status_updated_at = at
        else:  # a status callback beat the send's answer and was merged: show what is stored
            item = svc.messages.get(item.pk, item.sk) or item
        view = svc.view(item)
        svc.events.publish(
            MESSAGE_SENT,
            {
                "tenant_id": self.tenant_id,
                "channel_id": channel.channel_id,
                "conversation_id": self.conversation_id,
                "provider": channel.provider.value,
                "contact_phone": conversation.contact_phone,
                "message": view,
            },
        )
        metrics.add_metric(name="MessageSent", unit="Count", value=1)
        logger.info(
            "message sent",
            extra={
                "message_id": item.message_id,
                "conversation_id": self.conversation_id,
                "provider": channel.provider.value,
                "type": outbound.type,
                "status": item.status,
            },
        )
        return SendResult(201, view)

    def _touch_conversation(self, channel: Channel, outbound: Outbound, now: datetime) -> None:
        """Activity for the inbox, and the operator lock: auto-replies pause while an operator is talking."""
        minutes = int((channel.auto_reply or {}).get("operator_lock_minutes") or DEFAULT_OPERATOR_LOCK_MINUTES)
        now_iso = ids.iso(now)
        self.service.conversations.update(
            self.tenant_id,
            self.conversation_id,
            [
                ConversationModel.last_message_at.set(now_iso),
                ConversationModel.last_message_preview.set(outbound.preview()),
                ConversationModel.gsi1pk.set(tenant_pk(self.tenant_id)),
                ConversationModel.gsi1sk.set(ConversationModel.activity_key(now_iso, self.conversation_id)),
                ConversationModel.operator_lock_until.set(ids.iso(now + timedelta(minutes=minutes))),
            ],
        )

    def _failed(self, item: MessageModel, error: ProviderError) -> SendResult:
        svc = self.service
        normalized = error.as_error()
        at = ids.iso(svc.clock())
        try:
            recorded = svc.messages.fail_outbound(item.pk, item.sk, normalized, at=at)
        except Exception:
            # The provider's answer is known and must reach the client as it is (a 5xx would invite a resend of
            # a message whose outcome may be unknown); the stored message stays ``queued``, logged for repair.
            logger.exception("send failure could not be recorded", extra={"message_id": item.message_id})
            metrics.add_metric(name="SendNotRecorded", unit="Count", value=1)
            recorded = False
        if recorded:
            item.status, item.status_rank, item.status_updated_at = st.FAILED, st.RANK[st.FAILED], at
            item.error = normalized
        metrics.add_metric(name="MessageSendFailed", unit="Count", value=1)
        logger.warning(
            "message not sent",
            extra={
                "message_id": item.message_id,
                "conversation_id": self.conversation_id,
                "error_code": normalized["code"],
                "provider_code": normalized["provider_code"],
            },
        )
        status, body = self._failure_answer(error, item.message_id)
        return SendResult(status, body)

    @staticmethod
    def _failure_answer(error: ProviderError, message_id: str | None) -> tuple[int, dict[str, Any]]:
        extra: dict[str, Any] = {"provider_error": error.as_error()}  # exactly what the message stores
        if message_id:
            extra["message_id"] = message_id
        kwargs: dict[str, Any] = {
            "provider_code": error.provider_code,
            "retryable": error.retryable,
            "http_status": error.http_status,
            "normalized_code": error.normalized_code,
        }
        answer: ProviderError
        if isinstance(error, SendOutcomeUnknown):
            answer = ProviderUnavailable(error.message, **kwargs)
        elif isinstance(error, ProviderUnavailable):
            answer = ProviderUnavailable(f"The provider did not take the message, retries exhausted. {error.message}",
                                         **kwargs)
        else:
            answer = ProviderRejected(f"The provider refused the message. {error.message}", **kwargs)
        return status_for(answer), error_body(answer, **extra)
