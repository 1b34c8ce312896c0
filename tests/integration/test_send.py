"""Sending (DESIGN §2 POST /v1/conversations/{id}/messages) in-process against moto with the template's resources.

Providers are the real adapters talking HTTP to a scripted local server that answers like Twilio / Meta (the
error bodies are the providers' own shapes), so every test also counts exactly how many requests reached "the
provider". Handler-level tests invoke the send function like Lambda would with HTTP API v2 events; the retry
tests drive the service directly with an injected sleep so they take no wall-clock time.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from gateway.bootstrap import ready
from gateway.config import Settings, get_settings
from gateway.domain import ids
from gateway.domain.channel import Channel, route_key_twilio
from gateway.domain.message import InboundMessage, MediaRef
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider
from gateway.services.channels import ChannelService, MetaChannelIn, TwilioChannelIn
from gateway.services.send import RetryPolicy, SendService, TextIn
from gateway.store.conversations_repo import ConversationRepository
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import MessageModel

from local.provision import Resources
from local.testing import ApiEvents

TEST_PUBLIC_BASE_URL = "https://gateway.example.test"  # what tests/integration/conftest.py deploys with
ACCOUNT = "AC" + "0123456789abcdef" * 2
TWILIO_NUMBER = "+14155238886"
PHONE_NUMBER_ID = "106540352242922"
CONTACT = "+14155550100"
SEND = "SendMessageFunction"
Invoke = Callable[[str, dict[str, Any]], Any]


# ---------------------------------------------------------------------------------------------- provider stand-in
@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    delay: float = 0.0


@dataclass
class ScriptedProvider:
    """A local HTTP server answering Twilio's Messages.json and Meta's /messages. Scripted answers are used first
    (in order), then a success. Every request is recorded."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sends(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].endswith(("/Messages.json", "/messages"))]

    def answer(self, path: str) -> Answer:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        if path.endswith("/Messages.json"):
            return Answer(201, {"sid": "SM" + ids.new_id("x")[2:].ljust(32, "0")[:32], "status": "queued"})
        return Answer(200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": CONTACT, "wa_id": CONTACT[1:]}],
            "messages": [{"id": "wamid." + ids.new_id("w")}],
        })


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    scripted = ScriptedProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with scripted.lock:
                scripted.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw.decode()})
            answer = scripted.answer(self.path)
            if answer.delay:
                time.sleep(answer.delay)
            payload = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield scripted
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(aws: Resources, provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch) -> Resources:
    """moto + both providers' base URLs pointing at the scripted server (the handler reads them at cold start)."""
    monkeypatch.setenv("TWILIO_API_BASE_URL", provider.url)
    monkeypatch.setenv("META_GRAPH_BASE_URL", provider.url)
    get_settings.cache_clear()
    ready()
    return aws


# ---------------------------------------------------------------------------------------------- data helpers
def twilio_channel(tenant: str = "acme", number: str = TWILIO_NUMBER, **extra: Any) -> Channel:
    body = TwilioChannelIn(provider="twilio", name="Main", phone_number=number, account_sid=ACCOUNT,
                           auth_token="twilio-token-0123456789", **extra)
    return ChannelService().create(tenant, body)


def meta_channel(tenant: str = "acme", phone_number_id: str = PHONE_NUMBER_ID) -> Channel:
    body = MetaChannelIn(provider="meta", name="Main", phone_number_id=phone_number_id, business_account_id="1234",
                         display_phone_number="+15550783881", access_token="EAAG-token-0123456789",
                         app_secret="app-secret-0123456789")
    return ChannelService().create(tenant, body)


def inbound(channel: Channel, *, hours_ago: float = 1.0, provider_id: str | None = None,
            media: list[MediaRef] | None = None) -> str:
    """A contact message stored like a webhook stores it; returns the conversation id."""
    pmid = provider_id or ("SM" + ids.new_id("x")[2:].ljust(32, "0")[:32] if channel.provider == "twilio"
                           else "wamid." + ids.new_id("in"))
    message = InboundMessage(provider=channel.provider.value, provider_message_id=pmid, contact_phone=CONTACT,
                             type="image" if media else "text", text="Hello", contact_name="Zoë", media=media or [])
    when = ids.iso(ids.utcnow() - timedelta(hours=hours_ago))
    assert MessageRepository().record_inbound(channel, message, now=when)
    return ids.conversation_id(channel.tenant_id, channel.channel_id, CONTACT)


def stored(tenant: str, conversation_id: str, message_id: str) -> MessageModel:
    items = [m for m in MessageModel.query(MessageModel.partition(tenant, conversation_id))
             if getattr(m, "message_id", None) == message_id]
    assert len(items) == 1
    return items[0]


def send_event(api_event: ApiEvents, claims: Callable[..., dict[str, Any]], conversation_id: str,
               body: dict[str, Any], *, tenant: str = "acme", key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    return api_event("POST", f"/v1/conversations/{conversation_id}/messages", json=body, headers=headers,
                     claims=claims(tenant_id=tenant, admin=False))


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return int(response["statusCode"]), json.loads(response["body"])


# ---------------------------------------------------------------------------------------------- handler level
def test_twilio_text_is_stored_queued_then_sent_with_the_provider_id_and_status_callback(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    channel = twilio_channel()
    conversation_id = inbound(channel)

    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, {"type": "text", "text": "Hi"})))

    assert status == 201, body
    assert body["status"] == "sent" and body["direction"] == "outbound" and body["type"] == "text"
    assert body["text"] == "Hi" and body["provider"] == "twilio"
    assert re.fullmatch(r"SM[0-9a-zA-Z]{32}", body["provider_message_id"])
    assert body["sender"]["kind"] == "operator" and body["sender"]["id"]
    item = stored("acme", conversation_id, body["id"])
    assert item.status == "sent" and item.provider_message_id == body["provider_message_id"]
    [request] = provider.sends()
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    form = parse_qs(request["body"])
    assert form["To"] == [f"whatsapp:{CONTACT}"] and form["From"] == [f"whatsapp:{TWILIO_NUMBER}"]
    assert form["Body"] == ["Hi"]
    assert form["StatusCallback"] == [TEST_PUBLIC_BASE_URL + "/webhooks/twilio/status"]


def test_another_tenants_conversation_is_404_and_nothing_is_sent(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    conversation_id = inbound(twilio_channel())

    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, {"type": "text", "text": "Hi"},
                                                  tenant="globex")))

    assert status == 404 and body["error"]["code"] == "conversation_not_found"
    assert provider.sends() == []


def test_free_form_outside_the_window_is_422_but_a_template_is_sent(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    conversation_id = inbound(meta_channel(), hours_ago=25)

    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, {"type": "text", "text": "Hi"})))
    assert status == 422 and body["error"]["code"] == "outside_customer_service_window"
    assert provider.sends() == []

    template = {"type": "template", "template": {"name": "order_update", "language": "en_US",
                                                 "components": [{"type": "body", "parameters": [
                                                     {"type": "text", "text": "42"}]}]}}
    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, template)))
    assert status == 201, body
    assert body["status"] == "sent" and body["type"] == "template"
    [request] = provider.sends()
    sent = json.loads(request["body"])
    assert request["path"] == f"/v25.0/{PHONE_NUMBER_ID}/messages"
    assert sent["recipient_type"] == "individual" and sent["to"] == CONTACT
    assert sent["template"]["name"] == "order_update" and sent["template"]["language"]["code"] == "en_US"


def test_template_of_the_other_provider_is_a_validation_error(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    conversation_id = inbound(twilio_channel())
    body = {"type": "template", "template": {"name": "hello", "language": "en_US"}}

    status, answer_body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body)))

    assert status == 422 and answer_body["error"]["code"] == "validation_error"
    assert provider.sends() == []


@pytest.mark.parametrize(
    "media_url",
    ["https://127.0.0.1:8080\\@cdn.example.com/a.jpg", "https://ops:secret@cdn.example.com/a.jpg",
     "https://cdn.example.com/a\u0000.jpg", "https://cdn.example.com\t/a.jpg"],
    ids=["backslash", "userinfo", "nul", "tab"],
)
def test_a_media_url_that_parsers_read_apart_is_422_and_nothing_is_stored_or_sent(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any, media_url: str
) -> None:
    conversation_id = inbound(twilio_channel())
    body = {"type": "image", "media_url": media_url}

    status, answer_body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body)))

    assert status == 422 and answer_body["error"]["code"] == "validation_error"
    assert "media_url" in json.dumps(answer_body)
    assert provider.sends() == []
    assert [m.direction for m in MessageModel.query(MessageModel.partition("acme", conversation_id))] == ["inbound"]


def test_same_idempotency_key_twice_sends_once_and_returns_the_same_message(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    conversation_id = inbound(twilio_channel())
    body = {"type": "text", "text": "Once only"}

    first = invoke(SEND, send_event(api_event, claims, conversation_id, body, key="k-1"))
    second = invoke(SEND, send_event(api_event, claims, conversation_id, {**body, "preview_url": False}, key="k-1"))

    assert answer(first)[0] == answer(second)[0] == 201
    assert answer(first)[1]["id"] == answer(second)[1]["id"]
    assert len(provider.sends()) == 1
    assert second["headers"].get("Idempotent-Replayed") == "true"

    status, conflict = answer(invoke(SEND, send_event(api_event, claims, conversation_id,
                                                      {"type": "text", "text": "Other"}, key="k-1")))
    assert status == 409 and conflict["error"]["code"] == "idempotency_conflict"
    assert len(provider.sends()) == 1
    # The key is the tenant's: another tenant may use the same key string for its own request.
    status, _ = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body, tenant="globex", key="k-1")))
    assert status == 404


def _idempotency_item(key: str, tenant: str = "acme") -> Any:
    from gateway.services.send import IDEMPOTENCY_SCOPE
    from gateway.store.idempotency_repo import IdempotencyRepository, idempotency_pk

    return IdempotencyRepository().get(idempotency_pk(tenant, IDEMPOTENCY_SCOPE, key))


def test_a_404_is_not_kept_for_the_key_so_the_same_key_sends_once_the_conversation_exists(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    channel = twilio_channel()
    not_yet = ids.conversation_id(channel.tenant_id, channel.channel_id, CONTACT)  # the contact has not written
    body = {"type": "text", "text": "Hi"}

    status, first = answer(invoke(SEND, send_event(api_event, claims, not_yet, body, key="k-404")))
    assert status == 404 and first["error"]["code"] == "conversation_not_found"
    assert _idempotency_item("k-404") is None  # released: nothing was done, nothing to replay

    assert inbound(channel) == not_yet
    response = invoke(SEND, send_event(api_event, claims, not_yet, body, key="k-404"))
    status, sent = answer(response)
    assert status == 201 and "Idempotent-Replayed" not in (response.get("headers") or {})
    assert len(provider.sends()) == 1
    # From now on the 201 is the key's answer.
    again = invoke(SEND, send_event(api_event, claims, not_yet, body, key="k-404"))
    assert answer(again) == (201, sent) and again["headers"].get("Idempotent-Replayed") == "true"
    assert len(provider.sends()) == 1


def test_a_422_before_sending_is_not_kept_so_the_same_key_sends_once_corrected(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    channel = meta_channel()
    conversation_id = inbound(channel, hours_ago=25)
    body = {"type": "text", "text": "Hi"}
    twilio_template = {"type": "template", "template": {"content_sid": "HX" + "0" * 32}}

    # A body the channel's provider cannot express: 422, key released, and the same key takes another body.
    status, first = answer(invoke(SEND, send_event(api_event, claims, conversation_id, twilio_template, key="k-422")))
    assert status == 422 and first["error"]["code"] == "validation_error"
    # Outside the 24-hour window: 422, key released.
    status, second = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body, key="k-422")))
    assert status == 422 and second["error"]["code"] == "outside_customer_service_window"
    assert _idempotency_item("k-422") is None and provider.sends() == []

    inbound(channel, hours_ago=0.1)  # the contact writes again: the window is open
    status, sent = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body, key="k-422")))
    assert status == 201 and sent["status"] == "sent"
    assert len(provider.sends()) == 1 and _idempotency_item("k-422").state == "done"


def test_a_disabled_channel_is_not_kept_for_the_key(env: Resources, provider: ScriptedProvider) -> None:
    channel = twilio_channel()
    conversation_id = inbound(channel)
    ChannelService().disable(channel.tenant_id, channel.channel_id)

    refused = send_text(service(provider), conversation_id, key="k-409")

    assert refused.status_code == 409 and refused.body["error"]["code"] == "channel_disabled"
    assert _idempotency_item("k-409") is None and provider.sends() == []


def test_a_tenant_id_that_is_not_one_is_403_and_nothing_is_sent(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    conversation_id = inbound(twilio_channel())
    body = {"type": "text", "text": "Hi"}

    for odd in ("acme#send", " acme"):
        status, refused = answer(invoke(SEND, send_event(api_event, claims, conversation_id, body, tenant=odd,
                                                         key="k")))
        assert status == 403 and refused["error"]["code"] == "forbidden", odd
    assert provider.sends() == []


def test_operator_send_sets_the_lock_and_the_conversation_activity(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    channel = twilio_channel()
    conversation_id = inbound(channel)
    before = ids.utcnow()
    event = send_event(api_event, claims, conversation_id, {"type": "text", "text": "On it"})

    status, body = answer(invoke(SEND, event))

    assert status == 201
    conversation = ConversationRepository().get("acme", conversation_id)
    lock = ids.parse_iso(conversation.operator_lock_until or "")
    assert timedelta(minutes=29) < lock - before < timedelta(minutes=31)
    assert conversation.last_message_at == body["created_at"]
    assert conversation.last_message_preview == "On it"


def test_a_read_receipt_answers_the_target_message_with_its_media_url(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    """The answer is the API's message view: the stored image's presigned URL is signed with this function's role
    (which must allow s3:GetObject on the media, checked by tests/iam_coverage.py)."""
    wamid = "wamid.inbound-image"
    key = "acme/conversation/message/0"
    conversation_id = inbound(meta_channel(), provider_id=wamid,
                              media=[MediaRef(content_type="image/jpeg", status="stored", s3_key=key)])

    read = {"type": "read", "message_id": wamid}
    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, read)))

    assert status == 200, body
    [media] = body["media"]
    assert media["status"] == "stored" and f"/{key}?" in media["url"]
    assert [json.loads(r["body"])["status"] for r in provider.sends()] == ["read"]


def test_message_sent_event_reaches_the_bus(
    env: Resources, provider: ScriptedProvider, invoke: Invoke, api_event: ApiEvents, claims: Any
) -> None:
    bus = env.ref("EventBus")
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="sent-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="sent", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["whatsapp.gateway"], "detail-type": ["message.sent"]}))
    events.put_targets(Rule="sent", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    conversation_id = inbound(meta_channel())

    status, body = answer(invoke(SEND, send_event(api_event, claims, conversation_id, {"type": "text", "text": "Hi"})))

    assert status == 201
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "whatsapp.gateway" and event["detail-type"] == "message.sent"
    assert event["detail"]["tenant_id"] == "acme"
    assert event["detail"]["message"]["id"] == body["id"]
    assert event["detail"]["message"]["provider_message_id"] == body["provider_message_id"]


# ---------------------------------------------------------------------------------------------- service level
@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def service(provider: ScriptedProvider, *, timeout: float = 5.0, sleep: Callable[[float], None] | None = None,
            **extra: Any) -> SendService:
    settings = Settings.from_env().model_copy(update={"provider_timeout_seconds": timeout})
    return SendService(
        settings=settings,
        providers={"twilio": TwilioProvider(settings), "meta": MetaProvider(settings)},
        retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, budget_seconds=20.0),
        sleep=sleep or Sleeps(),
        rng=random.Random(7),
        **extra,
    )


def send_text(svc: SendService, conversation_id: str, text: str = "Hi", key: str | None = None) -> Any:
    return svc.send("acme", "operator-1", conversation_id, TextIn(type="text", text=text),
                    public_base_url=TEST_PUBLIC_BASE_URL, idempotency_key=key)


@pytest.mark.parametrize(
    ("make_channel", "error", "status_code", "provider_code"),
    [
        (twilio_channel, {"code": 63016, "message": "Failed to send freeform message because you are outside the "
                                                    "allowed window.", "status": 400}, 400, "63016"),
        (meta_channel, {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                                  "code": 131047, "error_data": {"details": "Message failed to send because more "
                                                                 "than 24 hours have passed"}}}, 400, "131047"),
    ],
    ids=["twilio-63016", "meta-131047"],
)
def test_provider_window_rejection_is_422_and_the_message_is_stored_failed(
    env: Resources, provider: ScriptedProvider, make_channel: Callable[[], Channel], error: dict[str, Any],
    status_code: int, provider_code: str,
) -> None:
    conversation_id = inbound(make_channel())
    provider.script.append(Answer(status_code, error))
    sleeps = Sleeps()

    result = send_text(service(provider, sleep=sleeps), conversation_id)

    assert result.status_code == 422
    assert result.body["error"]["code"] == "provider_rejected"
    normalized = result.body["error"]["provider_error"]
    assert normalized["code"] == "outside_customer_service_window"
    assert normalized["provider_code"] == provider_code and normalized["retryable"] is False
    item = stored("acme", conversation_id, result.body["error"]["message_id"])
    assert item.status == "failed" and item.error == normalized
    assert len(provider.sends()) == 1 and sleeps.calls == []  # permanent: never retried


@pytest.mark.parametrize(
    ("script", "status_code", "code"),
    [
        ([Answer(400, {"code": 63016, "message": "outside the allowed window", "status": 400})], 422,
         "provider_rejected"),
        ([Answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429})] * 3, 502,
         "provider_unavailable"),
    ],
    ids=["422-provider-rejected", "502-retries-exhausted"],
)
def test_an_answer_after_the_provider_was_called_is_kept_for_the_key(
    env: Resources, provider: ScriptedProvider, script: list[Answer], status_code: int, code: str
) -> None:
    conversation_id = inbound(twilio_channel())
    provider.script.extend(script)

    first = send_text(service(provider), conversation_id, key="k-failed")
    again = send_text(service(provider), conversation_id, key="k-failed")

    assert first.status_code == status_code and first.body["error"]["code"] == code
    assert again.replayed and (again.status_code, again.body) == (first.status_code, first.body)
    assert len(provider.sends()) == len(script)  # the replay called nobody


@pytest.mark.parametrize(
    ("make_channel", "throttled"),
    [
        (twilio_channel, Answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429})),
        (meta_channel, Answer(400, {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException",
                                              "code": 130429}})),
    ],
    ids=["twilio-429", "meta-130429"],
)
def test_throttling_is_retried_with_backoff_then_502_and_the_message_failed_retryable(
    env: Resources, provider: ScriptedProvider, make_channel: Callable[[], Channel], throttled: Answer
) -> None:
    conversation_id = inbound(make_channel())
    provider.script.extend([throttled] * 3)
    sleeps = Sleeps()

    result = send_text(service(provider, sleep=sleeps), conversation_id)

    assert result.status_code == 502
    assert result.body["error"]["code"] == "provider_unavailable"
    assert result.body["error"]["provider_error"]["code"] == "rate_limited"
    assert result.body["error"]["provider_error"]["retryable"] is True
    assert len(provider.sends()) == 3
    assert len(sleeps.calls) == 2 and 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0  # full jitter
    item = stored("acme", conversation_id, result.body["error"]["message_id"])
    assert item.status == "failed" and item.error["retryable"] is True


def test_a_transient_error_then_success_is_sent_once(env: Resources, provider: ScriptedProvider) -> None:
    conversation_id = inbound(meta_channel())
    provider.script.append(Answer(400, {"error": {"message": "(#131000) Something went wrong", "code": 131000}}))

    result = send_text(service(provider), conversation_id)

    assert result.status_code == 201 and result.body["status"] == "sent"
    assert len(provider.sends()) == 2


def test_a_timeout_after_the_request_was_sent_is_never_resent(env: Resources, provider: ScriptedProvider) -> None:
    conversation_id = inbound(twilio_channel())
    provider.script.append(Answer(201, {"sid": "SM" + "1" * 32, "status": "queued"}, delay=1.5))
    sleeps = Sleeps()

    result = send_text(service(provider, timeout=0.5, sleep=sleeps), conversation_id)

    assert result.status_code == 502
    assert result.body["error"]["provider_error"]["code"] == "outcome_unknown"
    assert result.body["error"]["provider_error"]["retryable"] is False
    assert len(provider.sends()) == 1 and sleeps.calls == []
    assert stored("acme", conversation_id, result.body["error"]["message_id"]).status == "failed"


def test_concurrent_requests_with_one_key_send_once(env: Resources, provider: ScriptedProvider) -> None:
    conversation_id = inbound(twilio_channel())
    provider.script.append(Answer(201, {"sid": "SM" + "2" * 32, "status": "queued"}, delay=0.5))
    svc = service(provider, sleep=time.sleep)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: send_text(svc, conversation_id, key="same-key"), range(4)))

    assert len(provider.sends()) == 1
    assert {r.status_code for r in results} == {201}
    assert len({r.body["id"] for r in results}) == 1
    assert sum(r.replayed for r in results) == 3


def test_a_status_callback_that_beat_the_send_answer_is_merged(env: Resources, provider: ScriptedProvider) -> None:
    from gateway.domain.status import StatusUpdate

    channel = twilio_channel()
    conversation_id = inbound(channel)
    sid = "SM" + "3" * 32
    MessageRepository().apply_status(
        channel, StatusUpdate("twilio", sid, "delivered", "delivered", ids.iso(ids.utcnow())),
        route_key=route_key_twilio(channel.phone_number),
    )
    provider.script.append(Answer(201, {"sid": sid, "status": "queued"}))

    result = send_text(service(provider), conversation_id)

    assert result.status_code == 201
    assert result.body["provider_message_id"] == sid and result.body["status"] == "delivered"


def test_meta_reaction_and_read_receipt_target_a_message_of_the_conversation(
    env: Resources, provider: ScriptedProvider
) -> None:
    from gateway.services.send import ReactionIn, ReadIn

    wamid = "wamid.inbound-1"
    conversation_id = inbound(meta_channel(), provider_id=wamid)
    svc = service(provider)

    reaction = svc.send("acme", "op", conversation_id, ReactionIn(type="reaction", message_id=wamid, emoji="👍"),
                        public_base_url=TEST_PUBLIC_BASE_URL)
    read = svc.send("acme", "op", conversation_id, ReadIn(type="read", message_id=wamid),
                    public_base_url=TEST_PUBLIC_BASE_URL)
    unknown = svc.send("acme", "op", conversation_id, ReadIn(type="read", message_id="wamid.nope"),
                       public_base_url=TEST_PUBLIC_BASE_URL)

    assert reaction.status_code == 201 and reaction.body["type"] == "reaction"
    assert read.status_code == 200 and read.body["provider_message_id"] == wamid
    assert unknown.status_code == 422
    reaction_request, read_request = (json.loads(r["body"]) for r in provider.sends())
    assert reaction_request["reaction"] == {"message_id": wamid, "emoji": "👍"}
    assert read_request == {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    assert ConversationRepository().get("acme", conversation_id).unread_count == 0


def test_a_read_receipt_is_kept_for_the_key_once_sent(env: Resources, provider: ScriptedProvider) -> None:
    from gateway.services.send import ReadIn

    wamid = "wamid.inbound-2"
    conversation_id = inbound(meta_channel(), provider_id=wamid)
    svc = service(provider)

    def read(message_id: str) -> Any:
        return svc.send("acme", "op", conversation_id, ReadIn(type="read", message_id=message_id),
                        public_base_url=TEST_PUBLIC_BASE_URL, idempotency_key="k-read")

    assert read("wamid.nope").status_code == 422  # no such message: not kept
    first, again = read(wamid), read(wamid)

    assert first.status_code == 200 and again.replayed and again.body == first.body
    assert len(provider.sends()) == 1


def test_a_request_that_died_after_storing_its_message_is_answered_from_it_never_resent(
    env: Resources, provider: ScriptedProvider
) -> None:
    from gateway.services.send import IDEMPOTENCY_SCOPE, request_fingerprint
    from gateway.store.idempotency_repo import IdempotencyRepository, idempotency_pk

    channel = twilio_channel()
    conversation_id = inbound(channel)
    body = TextIn(type="text", text="Hi")
    repo = IdempotencyRepository()
    long_ago = int(ids.utcnow().timestamp()) - 600
    pk = idempotency_pk("acme", IDEMPOTENCY_SCOPE, "crashed")
    claim = repo.claim(pk, request_fingerprint(conversation_id, body), now=long_ago)
    queued = MessageRepository().record_outbound(channel, conversation_id=conversation_id, type="text",
                                                 sender={"kind": "operator", "id": "op"}, text="Hi")
    repo.set_pending(claim.item, {"message_pk": queued.pk, "message_sk": queued.sk, "message_id": queued.message_id})

    result = send_text(service(provider), conversation_id, key="crashed")

    assert result.status_code == 502
    assert result.body["error"]["provider_error"]["code"] == "outcome_unknown"
    assert result.body["error"]["message_id"] == queued.message_id
    assert provider.sends() == []
    assert stored("acme", conversation_id, queued.message_id).status == "failed"
    again = send_text(service(provider), conversation_id, key="crashed")
    assert again.replayed and again.body == result.body


def test_a_request_that_died_before_storing_anything_is_run_again(env: Resources, provider: ScriptedProvider) -> None:
    from gateway.services.send import IDEMPOTENCY_SCOPE, request_fingerprint
    from gateway.store.idempotency_repo import IdempotencyRepository, idempotency_pk

    conversation_id = inbound(twilio_channel())
    long_ago = int(ids.utcnow().timestamp()) - 600
    IdempotencyRepository().claim(idempotency_pk("acme", IDEMPOTENCY_SCOPE, "early"),
                                  request_fingerprint(conversation_id, TextIn(type="text", text="Hi")), now=long_ago)

    result = send_text(service(provider), conversation_id, key="early")

    assert result.status_code == 201 and len(provider.sends()) == 1


def test_a_duplicate_that_waits_too_long_for_the_first_request_gets_409(
    env: Resources, provider: ScriptedProvider
) -> None:
    from gateway.services.send import IDEMPOTENCY_SCOPE, request_fingerprint
    from gateway.store.idempotency_repo import IdempotencyRepository, idempotency_pk

    conversation_id = inbound(twilio_channel())
    IdempotencyRepository().claim(idempotency_pk("acme", IDEMPOTENCY_SCOPE, "busy"),
                                  request_fingerprint(conversation_id, TextIn(type="text", text="Hi")),
                                  now=int(ids.utcnow().timestamp()))
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(Exception) as caught:
        send_text(service(provider, sleep=sleep, monotonic=lambda: clock[0]), conversation_id, key="busy")

    assert getattr(caught.value, "code", None) == "idempotency_in_progress"
    assert provider.sends() == []
