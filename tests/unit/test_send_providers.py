"""The send side of both adapters (request shapes, transport failures) and the send request bodies."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from gateway.config import Settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.errors import ProviderUnavailable, SendOutcomeUnknown, ValidationFailed
from gateway.domain.outbound import Outbound, Template
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider
from gateway.services.send import (
    RetryPolicy,
    SendMessageIn,
    SendService,
    TextIn,
    request_fingerprint,
    to_outbound,
)
from pydantic import TypeAdapter, ValidationError

ACCOUNT = "AC" + "0" * 32
BODIES = TypeAdapter(SendMessageIn)


def channel(provider: Provider, **extra: Any) -> Channel:
    return Channel(tenant_id="acme", channel_id="ch_1", provider=provider, name="Main", phone_number="+14155238886",
                   status=ChannelStatus.ACTIVE, created_at="t", updated_at="t", credentials_ciphertext="x",
                   account_sid=ACCOUNT, phone_number_id="106540352242922", **extra)


class Recording(requests.Session):
    """Answers every request with ``answer`` and keeps the keyword arguments it was called with."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.status, self.answer = status, answer

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.answer).encode()
        return response


def twilio_form(outbound: Outbound, **channel_extra: Any) -> list[tuple[str, str]]:
    session = Recording(201, {"sid": "SM" + "1" * 32, "status": "queued"})
    provider = TwilioProvider(Settings(twilio_api_base_url="https://twilio.test"), session)
    result = provider.send(channel(Provider.TWILIO, **channel_extra), Secrets(auth_token="tok"), "+14155550100",
                           outbound, status_callback_url="https://gw.test/webhooks/twilio/status")
    assert result.provider_message_id == "SM" + "1" * 32 and result.status == "sent"
    [call] = session.calls
    assert call["url"] == f"https://twilio.test/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert call["auth"] == (ACCOUNT, "tok")
    return list(call["data"])


def test_twilio_text_form() -> None:
    form = twilio_form(Outbound("text", text="Hi"))

    assert form == [("To", "whatsapp:+14155550100"), ("From", "whatsapp:+14155238886"), ("Body", "Hi"),
                    ("StatusCallback", "https://gw.test/webhooks/twilio/status")]


def test_twilio_media_with_caption_and_messaging_service() -> None:
    form = dict(twilio_form(Outbound("image", media_url="https://x.test/a.jpg", caption="Look"),
                            messaging_service_sid="MG" + "2" * 32))

    assert form["MediaUrl"] == "https://x.test/a.jpg" and form["Body"] == "Look"
    assert form["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in form


def test_twilio_template_uses_content_sid_and_json_variables() -> None:
    template = Template(content_sid="HX" + "3" * 32, variables={"1": "Zoë", "2": "42"})
    form = dict(twilio_form(Outbound("template", template=template)))

    assert form["ContentSid"] == "HX" + "3" * 32
    assert json.loads(form["ContentVariables"]) == {"1": "Zoë", "2": "42"}
    assert "Body" not in form


def test_twilio_refuses_what_it_cannot_express() -> None:
    provider = TwilioProvider(Settings())
    with pytest.raises(ValidationFailed):
        provider.check_outbound(Outbound("template", template=Template(name="hello", language="en_US")))
    with pytest.raises(ValidationFailed):
        provider.check_outbound(Outbound("reaction", emoji="👍", target_message_id="SM1"))
    with pytest.raises(ValidationFailed):
        MetaProvider(Settings()).check_outbound(Outbound("template", template=Template(content_sid="HX" + "0" * 32)))


@pytest.mark.parametrize(
    ("outbound", "expected"),
    [
        (Outbound("text", text="Hi", preview_url=True), {"text": {"preview_url": True, "body": "Hi"}}),
        (Outbound("image", media_url="https://x.test/a.jpg", caption="c", filename="ignored.jpg"),
         {"image": {"link": "https://x.test/a.jpg", "caption": "c"}}),
        (Outbound("document", media_url="https://x.test/a.pdf", caption="c", filename="a.pdf"),
         {"document": {"link": "https://x.test/a.pdf", "caption": "c", "filename": "a.pdf"}}),
        (Outbound("audio", media_url="https://x.test/a.ogg", caption="audio has none"),
         {"audio": {"link": "https://x.test/a.ogg"}}),
        (Outbound("template", template=Template(name="hi", language="en_US", components=[{"type": "body"}])),
         {"template": {"name": "hi", "language": {"policy": "deterministic", "code": "en_US"},
                       "components": [{"type": "body"}]}}),
        (Outbound("reaction", emoji="👍", target_provider_message_id="wamid.X"),
         {"reaction": {"message_id": "wamid.X", "emoji": "👍"}}),
    ],
    ids=["text", "image", "document", "audio", "template", "reaction"],
)
def test_meta_payloads(outbound: Outbound, expected: dict[str, Any]) -> None:
    session = Recording(200, {"messaging_product": "whatsapp", "contacts": [{"input": "+1", "wa_id": "1"}],
                              "messages": [{"id": "wamid.OUT"}]})
    provider = MetaProvider(Settings(meta_graph_base_url="https://graph.test", meta_graph_api_version="v25.0"), session)

    result = provider.send(channel(Provider.META), Secrets(access_token="EAAG"), "+14155550100", outbound)

    assert result.provider_message_id == "wamid.OUT"
    [call] = session.calls
    assert call["url"] == "https://graph.test/v25.0/106540352242922/messages"
    assert call["headers"]["Authorization"] == "Bearer EAAG"
    assert call["json"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+14155550100",
                            "type": outbound.type, **expected}


def test_an_accepted_send_without_an_id_is_an_unknown_outcome() -> None:
    provider = MetaProvider(Settings(), Recording(200, {"messaging_product": "whatsapp"}))

    with pytest.raises(SendOutcomeUnknown):
        provider.send(channel(Provider.META), Secrets(access_token="t"), "+14155550100", Outbound("text", text="x"))


# ---------------------------------------------------------------------------------------------- transport
@pytest.fixture
def slow_server() -> Iterator[str]:
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(1.0)
            try:
                self.send_response(201)
                self.end_headers()
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_read_timeout_after_sending_is_an_unknown_outcome(slow_server: str) -> None:
    provider = TwilioProvider(Settings(twilio_api_base_url=slow_server, provider_timeout_seconds=0.2))

    with pytest.raises(SendOutcomeUnknown) as caught:
        provider.send(channel(Provider.TWILIO), Secrets(auth_token="t"), "+14155550100", Outbound("text", text="x"))
    assert caught.value.retryable is False and caught.value.normalized_code == "outcome_unknown"


def test_a_refused_connection_is_retryable_because_nothing_was_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    provider = MetaProvider(Settings(meta_graph_base_url=f"http://127.0.0.1:{port}"))

    with pytest.raises(ProviderUnavailable) as caught:
        provider.send(channel(Provider.META), Secrets(access_token="t"), "+14155550100", Outbound("text", text="x"))
    assert caught.value.retryable is True and not isinstance(caught.value, SendOutcomeUnknown)


# ---------------------------------------------------------------------------------------------- bodies
@pytest.mark.parametrize(
    "body",
    [
        {"type": "text", "text": ""},
        {"type": "text", "text": "   "},
        {"type": "text", "text": "x" * 4097},
        {"type": "image", "media_url": "http://example.com/a.jpg"},
        {"type": "image", "media_url": "ftp://example.com/a.jpg"},
        {"type": "image", "media_url": "https://127.0.0.1:8080\\@example.com/a.jpg"},
        {"type": "image", "media_url": "https://user:pass@example.com/a.jpg"},
        {"type": "image", "media_url": "https://example.com/a\x00.jpg"},
        {"type": "image", "media_url": "https://example.com%2f@127.0.0.1/a.jpg"},
        {"type": "sticker", "media_url": "https://example.com/a.webp"},
        {"type": "template", "template": {"content_sid": "HX123"}},
        {"type": "template", "template": {"name": "hi"}},
        {"type": "template", "template": {"name": "hi", "language": "en_US", "content_sid": "HX" + "0" * 32}},
        {"type": "text", "text": "hi", "unknown": 1},
    ],
)
def test_invalid_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BODIES.validate_python(body)


def test_valid_bodies_map_to_outbound_messages() -> None:
    text = to_outbound(BODIES.validate_python({"type": "text", "text": "x" * 4096, "preview_url": True}))
    media = to_outbound(BODIES.validate_python({"type": "video", "media_url": "https://e.com/v.mp4", "caption": "c"}))
    twilio = to_outbound(BODIES.validate_python(
        {"type": "template", "template": {"content_sid": "HX" + "a" * 32, "variables": {"1": "x"}}}))
    meta = to_outbound(BODIES.validate_python({"type": "template", "template": {"name": "hi", "language": "pt_BR"}}))

    assert text.preview_url and text.free_form and len(text.text or "") == 4096
    assert media.type == "video" and media.caption == "c" and media.stored_text() == "c"
    assert twilio.template is not None and twilio.template.is_twilio and not twilio.free_form
    assert meta.template is not None and meta.template.language == "pt_BR" and not meta.template.is_twilio


def test_fingerprint_ignores_defaults_and_key_order_but_not_content() -> None:
    short = TextIn(type="text", text="hi")
    explicit = TextIn.model_validate({"preview_url": False, "text": "hi", "type": "text"})

    assert request_fingerprint("cv_1", short) == request_fingerprint("cv_1", explicit)
    assert request_fingerprint("cv_1", short) != request_fingerprint("cv_2", short)
    assert request_fingerprint("cv_1", short) != request_fingerprint("cv_1", TextIn(type="text", text="ho"))


# ---------------------------------------------------------------------------------------------- retries
def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(3)

    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays) and max(delays) > cap * 0.8


def test_retries_stop_at_the_attempt_limit_and_at_the_time_budget() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    calls = []

    def throttled() -> None:
        calls.append(1)
        clock[0] += 1.0
        raise ProviderUnavailable("busy", retryable=True, normalized_code="rate_limited")

    def service(policy: RetryPolicy) -> SendService:
        return SendService(settings=Settings(provider_timeout_seconds=8.0), retry=policy, sleep=sleep,
                           monotonic=lambda: clock[0], rng=random.Random(1), conversations=None, channels=None,
                           messages=None, idempotency=None, cipher=None, events=None)  # type: ignore[arg-type]

    with pytest.raises(ProviderUnavailable):
        service(RetryPolicy(max_attempts=3, budget_seconds=100)).call_provider(throttled, what="send")
    assert len(calls) == 3 and len(sleeps) == 2

    calls.clear()
    sleeps.clear()
    with pytest.raises(ProviderUnavailable):  # 1 s spent + delay + an 8 s timeout would pass a 9 s budget
        service(RetryPolicy(max_attempts=5, budget_seconds=9)).call_provider(throttled, what="send")
    assert len(calls) == 1 and sleeps == []


def test_unknown_outcomes_and_permanent_errors_are_never_retried() -> None:
    calls = []

    def unknown() -> None:
        calls.append(1)
        raise SendOutcomeUnknown("timeout", normalized_code="outcome_unknown")

    svc = SendService(settings=Settings(), sleep=lambda s: None, conversations=None, channels=None, messages=None,
                      idempotency=None, cipher=None, events=None)  # type: ignore[arg-type]
    with pytest.raises(SendOutcomeUnknown):
        svc.call_provider(unknown, what="send")
    assert calls == [1]
