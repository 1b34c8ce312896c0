"""X-Twilio-Signature: exactly the requests signed as Twilio signs them (twilio-python's RequestValidator) over
the channel's public URL and with the channel's own auth token are accepted; fail closed otherwise.

Requests go through the real event shape (HTTP API v2, base64 form body, built by ``local.apigw``) and the real
service; only storage is replaced by an in-memory fake.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from gateway.config import Settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel, ChannelStatus, Provider, route_key_twilio
from gateway.domain.errors import BadRequest, ChannelNotFound, InvalidSignature
from gateway.http.webhook import WebhookRequest
from gateway.providers import twilio_webhook
from gateway.services.twilio_webhooks import TwilioWebhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from local import TEMPLATE_PATH
from local.template import load_template
from local.testing import ApiEvents, readme_try_it

BASE_URL = "https://hooks.example.test"
INBOUND_URL = BASE_URL + "/webhooks/twilio"
STATUS_URL = BASE_URL + "/webhooks/twilio/status"
TOKEN_A = "a-token-0123456789abcdef0123456789"
TOKEN_B = "b-token-fedcba9876543210fedcba9876"
ACCOUNT_A = "AC" + "1" * 32
ACCOUNT_B = "AC" + "2" * 32
NUMBER_A = "+14155238886"
NUMBER_B = "+14155230000"
EVENTS = ApiEvents(load_template(TEMPLATE_PATH))


def channel(tenant: str, number: str, account: str, *, status: ChannelStatus = ChannelStatus.ACTIVE) -> Channel:
    return Channel(
        tenant_id=tenant, channel_id=f"ch_{tenant}", provider=Provider.TWILIO, name=tenant, phone_number=number,
        status=status, created_at="2025-01-01T00:00:00.000Z", updated_at="2025-01-01T00:00:00.000Z",
        credentials_ciphertext="opaque", account_sid=account,
    )


@dataclass
class FakeIngest:
    """IngestService's interface, in memory: two tenants, each with its own number, account and token."""

    routes: dict[str, tuple[Channel, dict[str, str]]] = field(default_factory=lambda: {
        route_key_twilio(NUMBER_A): (channel("acme", NUMBER_A, ACCOUNT_A), {"auth_token": TOKEN_A}),
        route_key_twilio(NUMBER_B): (channel("globex", NUMBER_B, ACCOUNT_B), {"auth_token": TOKEN_B}),
    })
    stored: list[Any] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    @property
    def channels(self) -> FakeIngest:  # IngestService.channels (the repository): only forget() is used
        return self

    def forget(self, keys: list[str]) -> None:
        self.forgotten.extend(keys)

    def channel_for(self, route_key: str) -> Channel | None:
        found = self.routes.get(route_key)
        return found[0] if found and found[0].active else None

    def secrets(self, ch: Channel) -> Secrets:
        return Secrets(next(s for c, s in self.routes.values() if c.channel_id == ch.channel_id))

    def store_message(self, ch: Channel, message: Any, *, route_key: str) -> str:
        assert route_key == route_key_twilio(ch.phone_number)
        self.stored.append((ch.tenant_id, message))
        return "msg_1"

    def apply_status(self, ch: Channel, update: Any, *, route_key: str) -> str:
        assert route_key == route_key_twilio(ch.phone_number)
        self.statuses.append((ch.tenant_id, update))
        return "applied"


def service(ingest: FakeIngest | None = None) -> tuple[TwilioWebhooks, FakeIngest]:
    ingest = ingest or FakeIngest()
    return TwilioWebhooks(ingest=ingest, settings=Settings(public_base_url=BASE_URL)), ingest  # type: ignore[arg-type]


def inbound(**extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "f" * 32, "AccountSid": ACCOUNT_A, "From": "whatsapp:+14155550100",
        "To": f"whatsapp:{NUMBER_A}", "Body": "hi", "NumMedia": "0", **extra,
    }


def request(path: str, params: dict[str, str] | list[tuple[str, str]], signature: str | None) -> WebhookRequest:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    event = EVENTS("POST", path, body=urlencode(params).encode(),
                   headers={"content-type": "application/x-www-form-urlencoded", **headers})
    assert event["isBase64Encoded"] is True  # HTTP API base64-encodes form bodies
    return WebhookRequest.from_event(event, max_body_bytes=twilio_webhook.MAX_BODY_BYTES)


def sign(params: dict[str, str], token: str = TOKEN_A, url: str = INBOUND_URL) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


# ---------------------------------------------------------------------------------------------- examples
def test_signed_message_is_accepted_for_its_channels_tenant() -> None:
    svc, ingest = service()
    params = inbound()
    outcome = svc.receive_message(request("/webhooks/twilio", params, sign(params)))

    assert outcome.channel.tenant_id == "acme"
    assert [t for t, _ in ingest.stored] == ["acme"]


def test_blank_body_counts_in_the_signature() -> None:
    svc, ingest = service()
    params = inbound(Body="", NumMedia="1", MediaUrl0="https://api.twilio.com/m/ME1", MediaContentType0="image/png")
    svc.receive_message(request("/webhooks/twilio", params, sign(params)))
    without_blank = {k: v for k, v in params.items() if v}

    with pytest.raises(InvalidSignature):
        svc.receive_message(request("/webhooks/twilio", params, sign(without_blank)))
    assert len(ingest.stored) == 1


@pytest.mark.parametrize(
    "url", [INBOUND_URL, "https://hooks.example.test:443/webhooks/twilio"], ids=["as-configured", "default-port"]
)
def test_url_with_or_without_default_port(url: str) -> None:
    svc, ingest = service()
    params = inbound()
    svc.receive_message(request("/webhooks/twilio", params, sign(params, url=url)))
    assert len(ingest.stored) == 1


def test_url_with_port_configured_accepts_signature_without_port() -> None:
    ingest = FakeIngest()
    svc = TwilioWebhooks(ingest=ingest, settings=Settings(public_base_url="http://127.0.0.1:3000"))  # type: ignore[arg-type]
    params = inbound()
    for url in ("http://127.0.0.1:3000/webhooks/twilio", "http://127.0.0.1/webhooks/twilio"):
        svc.receive_message(request("/webhooks/twilio", params, sign(params, url=url)))
    assert len(ingest.stored) == 2


def test_query_string_is_part_of_the_signed_url() -> None:
    svc, ingest = service()
    params = inbound()
    event = EVENTS("POST", "/webhooks/twilio", body=urlencode(params).encode(), query="tag=x+y",
                   headers={"content-type": "application/x-www-form-urlencoded",
                            "X-Twilio-Signature": sign(params, url=INBOUND_URL + "?tag=x+y")})
    svc.receive_message(WebhookRequest.from_event(event, max_body_bytes=10_000))
    assert len(ingest.stored) == 1


@pytest.mark.parametrize(
    ("signature", "why"),
    [(None, "missing"), ("", "empty"), ("bm90IGEgc2lnbmF0dXJl", "wrong"),
     (sign(inbound(), token=TOKEN_B), "other channel's token"),
     (sign(inbound(), url=STATUS_URL), "other route's URL"),
     (sign(inbound(), url="https://evil.example/webhooks/twilio"), "other host")],
)
def test_bad_signatures_are_rejected_and_nothing_is_stored(signature: str | None, why: str) -> None:
    svc, ingest = service()
    with pytest.raises(InvalidSignature):
        svc.receive_message(request("/webhooks/twilio", inbound(), signature))
    assert ingest.stored == [], why


def test_a_channel_without_auth_token_never_accepts() -> None:
    ingest = FakeIngest()
    ch, _ = ingest.routes[route_key_twilio(NUMBER_A)]
    ingest.routes[route_key_twilio(NUMBER_A)] = (ch, {})
    svc, _ = service(ingest)
    params = inbound()
    for token in ("", TOKEN_A):
        with pytest.raises(InvalidSignature):
            svc.receive_message(request("/webhooks/twilio", params, sign(params, token=token or "x")))
    assert ingest.stored == []


def test_unknown_disabled_or_other_account_number_is_404() -> None:
    ingest = FakeIngest()
    ch, secrets = ingest.routes[route_key_twilio(NUMBER_B)]
    ingest.routes[route_key_twilio(NUMBER_B)] = (ch.with_changes(status=ChannelStatus.DISABLED), secrets)
    svc, _ = service(ingest)
    cases = [inbound(To="whatsapp:+14155239999"), inbound(To=f"whatsapp:{NUMBER_B}", AccountSid=ACCOUNT_B),
             inbound(AccountSid=ACCOUNT_B), inbound(AccountSid="")]
    for params in cases:
        with pytest.raises(ChannelNotFound):
            svc.receive_message(request("/webhooks/twilio", params, sign(params)))
    assert ingest.stored == []


@dataclass
class CachingFakeIngest(FakeIngest):
    """Resolves like the warm cache does: the first answer sticks until forget()."""

    cache: dict[str, Channel | None] = field(default_factory=dict)
    by_ciphertext: dict[str, dict[str, str]] = field(default_factory=dict)

    def secrets(self, ch: Channel) -> Secrets:  # like KMS: what the channel's own ciphertext decrypts to
        return Secrets(self.by_ciphertext.get(ch.credentials_ciphertext) or super().secrets(ch))

    def forget(self, keys: list[str]) -> None:
        super().forget(keys)
        for key in keys:
            self.cache.pop(key, None)

    def channel_for(self, route_key: str) -> Channel | None:
        if route_key not in self.cache:
            self.cache[route_key] = super().channel_for(route_key)
        return self.cache[route_key]


def test_rotated_token_is_picked_up_despite_the_cache_and_refreshes_are_rate_limited() -> None:
    now = [100.0]
    ingest = CachingFakeIngest()
    svc = TwilioWebhooks(ingest=ingest, settings=Settings(public_base_url=BASE_URL),  # type: ignore[arg-type]
                         clock=lambda: now[0])
    params = inbound()
    svc.receive_message(request("/webhooks/twilio", params, sign(params)))  # cached with TOKEN_A
    key = route_key_twilio(NUMBER_A)
    ch, _ = ingest.routes[key]
    ingest.by_ciphertext = {"opaque": {"auth_token": TOKEN_A}, "rotated": {"auth_token": "rotated-token-123456"}}
    ingest.routes[key] = (ch.with_changes(credentials_ciphertext="rotated"), {"auth_token": "rotated-token-123456"})

    svc.receive_message(request("/webhooks/twilio", params, sign(params, token="rotated-token-123456")))
    assert ingest.forgotten == [key]
    for _ in range(3):  # bad signatures: no read each
        with pytest.raises(InvalidSignature):
            svc.receive_message(request("/webhooks/twilio", params, sign(params, token=TOKEN_B)))
    assert ingest.forgotten == [key]  # refreshed for the rotation moments ago: not again within 5 s
    now[0] += 6
    with pytest.raises(InvalidSignature):
        svc.receive_message(request("/webhooks/twilio", params, sign(params, token=TOKEN_A)))  # the old token
    assert ingest.forgotten == [key, key]
    assert len(ingest.stored) == 2


def test_missing_to_is_a_400() -> None:
    svc, _ = service()
    params = {k: v for k, v in inbound().items() if k != "To"}
    with pytest.raises(BadRequest):
        svc.receive_message(request("/webhooks/twilio", params, sign(params)))


def test_status_callback_is_checked_against_the_status_url_and_its_channel_by_from() -> None:
    svc, ingest = service()
    params = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_A,
              "From": f"whatsapp:{NUMBER_A}", "To": "whatsapp:+14155550100", "ErrorCode": ""}
    with pytest.raises(InvalidSignature):
        svc.receive_status(request("/webhooks/twilio/status", params, sign(params, url=INBOUND_URL)))
    outcome = svc.receive_status(request("/webhooks/twilio/status", params, sign(params, url=STATUS_URL)))

    assert (outcome.status, outcome.result) == ("delivered", "applied")
    assert [t for t, _ in ingest.statuses] == ["acme"]


def test_every_candidate_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(twilio_webhook.hmac, "compare_digest", spy)
    params = inbound()
    assert twilio_webhook.signature_valid(TOKEN_A, INBOUND_URL, params, sign(params))
    assert len(calls) == 2  # as configured (== without port) and with :443, both compared, no early exit


def test_repeated_parameter_is_signed_over_all_its_values() -> None:
    svc, ingest = service()
    pairs = [*inbound().items(), ("Extra", "1"), ("Extra", "2")]

    class Multi(dict[str, str]):
        def getall(self, name: str) -> list[str]:
            return [v for k, v in pairs if k == name]

    signature = RequestValidator(TOKEN_A).compute_signature(INBOUND_URL, Multi(pairs))
    svc.receive_message(request("/webhooks/twilio", pairs, signature))
    with pytest.raises(InvalidSignature):  # a signature over the first value only does not cover the second
        svc.receive_message(request("/webhooks/twilio", pairs, sign(dict(pairs[:-1]))))
    assert len(ingest.stored) == 1


# ---------------------------------------------------------------------------------------------- properties
TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",))
ROUTING = {"To", "AccountSid"}
REQUIRED = {"MessageSid", "From", *ROUTING}
names = st.text(TEXT, min_size=1, max_size=16).filter(lambda n: n not in REQUIRED)
values = st.one_of(st.just(""), st.text(TEXT, max_size=40))
media_types = st.sampled_from(["image/jpeg", "image/webp", "audio/ogg", "video/mp4", "application/pdf", ""])


@st.composite
def parameter_sets(draw: st.DrawFn) -> dict[str, str]:
    params = inbound(Body=draw(values), ProfileName=draw(values), WaId=draw(st.sampled_from(["", "14155550100"])))
    media = draw(st.lists(media_types, max_size=12))
    params["NumMedia"] = str(len(media))
    for n, content_type in enumerate(media):
        params[f"MediaUrl{n}"] = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_A}/Messages/MM1/Media/ME{n}"
        params[f"MediaContentType{n}"] = content_type
    params.update(draw(st.dictionaries(names, values, max_size=8)))
    return params


MUTATIONS = ["none", "default-port", "value", "add", "remove", "signature", "token", "url", "missing", "lowercase"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=parameter_sets(), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_exactly_the_correctly_signed_requests_are_accepted(
    params: dict[str, str], mutation: str, data: st.DataObject
) -> None:
    svc, ingest = service()
    signed, sent, token, url = dict(params), dict(params), TOKEN_A, INBOUND_URL
    signature: str | None = None
    mutable = sorted(k for k in params if k not in ROUTING)
    if mutation == "default-port":
        url = "https://hooks.example.test:443/webhooks/twilio"
    elif mutation == "value":
        key = data.draw(st.sampled_from(mutable))
        sent[key] = sent[key] + data.draw(st.text(TEXT, min_size=1, max_size=3))
    elif mutation == "add":
        key = data.draw(names.filter(lambda n: n not in params))
        sent[key] = data.draw(values)
    elif mutation == "remove":
        del sent[data.draw(st.sampled_from(mutable))]
    elif mutation == "token":
        token = data.draw(st.sampled_from([TOKEN_B, TOKEN_A + "x", TOKEN_A[:-1]]))
    elif mutation == "url":
        url = data.draw(st.sampled_from([STATUS_URL, INBOUND_URL + "/", "http://hooks.example.test/webhooks/twilio",
                                         "https://hooks.example.test:8443/webhooks/twilio", INBOUND_URL + "?a=1"]))
    if mutation != "missing":
        signature = sign(signed, token=token, url=url)
    if mutation == "signature":
        i = data.draw(st.integers(0, len(signature) - 1))
        replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "+/").filter(
            lambda c: c != signature[i]))
        signature = signature[:i] + replacement + signature[i + 1:]
    elif mutation == "lowercase" and signature is not None:
        if signature.lower() == signature:
            return
        signature = signature.lower()

    should_accept = mutation in {"none", "default-port"}
    try:
        svc.receive_message(request("/webhooks/twilio", sent, signature))
        outcome = "accepted"
    except InvalidSignature:
        outcome = "rejected"
    except BadRequest:
        outcome = "accepted"  # signature verified; the content was then refused (e.g. a garbage Latitude)
    assert outcome == ("accepted" if should_accept else "rejected"), mutation
    if not should_accept:
        assert ingest.stored == []


@settings(max_examples=200, deadline=None)
@given(params=parameter_sets())
def test_correctly_signed_parameter_sets_normalize_or_fail_cleanly(params: dict[str, str]) -> None:
    svc, ingest = service()
    try:
        svc.receive_message(request("/webhooks/twilio", params, sign(params)))
    except BadRequest:
        return  # arbitrary extra parameters may be a malformed Latitude, MessageSid...
    (_, message), = ingest.stored
    media = [k for k in params if k.startswith("MediaUrl") and params[k]]
    assert len(message.media) == len(media)
    assert all(m.status == "pending" for m in message.media)
    if message.media and "ButtonText" not in params and "ButtonPayload" not in params:
        assert message.type == twilio_webhook.media_type(message.media[0].content_type)
    assert message.text == (params["Body"].strip() or None) or message.type == "button"


urls = st.sampled_from([INBOUND_URL, "http://127.0.0.1:3000/webhooks/twilio", "https://h.example:8443/p?x=1&y=",
                        "http://localhost/webhooks/twilio/status"])


@settings(max_examples=300, deadline=None)
@given(url=urls, pairs=st.lists(st.tuples(st.text(TEXT, max_size=8), values), max_size=10), token=st.text(TEXT))
def test_our_algorithm_is_twilios(url: str, pairs: list[tuple[str, str]], token: str) -> None:
    """The layer computes signatures itself (no twilio package at runtime); it must agree with twilio-python's
    RequestValidator on every input, repeated names included, and accept what RequestValidator.validate accepts."""
    params = twilio_webhook.FormParams(pairs)
    validator = RequestValidator(token)

    assert twilio_webhook.compute_signature(token, url, params) == validator.compute_signature(url, params)
    for variant in {url, url.replace(":3000", ""), url.replace("https://h.example:8443", "https://h.example")}:
        signature = validator.compute_signature(variant, params)
        accepted = twilio_webhook.signature_valid(token or None, url, params, signature)
        assert accepted == (bool(token) and validator.validate(url, params, signature))


# ---------------------------------------------------------------------------------------------- events/ samples
# The README's "Try it" channel (a documented sample value, so not a test secret: make dev prints it).
SAMPLE_TOKEN = readme_try_it()["channels"]["twilio"]["auth_token"]


@pytest.mark.parametrize(("name", "path"), [("twilio_inbound", "/webhooks/twilio"),
                                            ("twilio_status", "/webhooks/twilio/status")])
def test_sample_events_are_signed_for_the_default_local_url(name: str, path: str) -> None:
    import json

    from local import REPO_ROOT
    from local.sign_twilio import sign_event

    event = json.loads((REPO_ROOT / "events" / f"{name}.json").read_text())
    request = WebhookRequest.from_event(event, max_body_bytes=twilio_webhook.MAX_BODY_BYTES)
    params = twilio_webhook.parse_form(request.body)
    url = "http://127.0.0.1:3000" + path
    assert event["isBase64Encoded"] is True
    assert twilio_webhook.signature_valid(SAMPLE_TOKEN, url, params, request.header("x-twilio-signature"))

    resigned = sign_event(event, SAMPLE_TOKEN, url, {"MessageSid": "SM" + "9" * 32, "Body": ""})
    request = WebhookRequest.from_event(resigned, max_body_bytes=twilio_webhook.MAX_BODY_BYTES)
    params = twilio_webhook.parse_form(request.body)
    assert params["MessageSid"] == "SM" + "9" * 32 and params["Body"] == ""
    assert twilio_webhook.signature_valid(SAMPLE_TOKEN, url, params, request.header("x-twilio-signature"))
    assert not twilio_webhook.signature_valid(SAMPLE_TOKEN, url, params, event["headers"]["x-twilio-signature"])
