"""Twilio webhooks in-process against moto with every resource of template.yaml (DESIGN §2 Webhooks, §3).

Handlers are loaded and invoked like Lambda would (``local.runtime``), with HTTP API v2 events built by the same
code as the local gateway (form bodies base64-encoded), signed by twilio-python's RequestValidator exactly as
Twilio signs them. Channels are created through the channels API; conversations are read through the inbox API.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.client
import pytest
from twilio.request_validator import RequestValidator

from local.provision import Resources
from local.runtime import FunctionRuntime
from local.testing import ApiEvents, at_once

TEST_PUBLIC_BASE_URL = "https://gateway.example.test"  # what tests/integration/conftest.py deploys with
WEBHOOK_URL = TEST_PUBLIC_BASE_URL + "/webhooks/twilio"
STATUS_URL = TEST_PUBLIC_BASE_URL + "/webhooks/twilio/status"
NUMBER = "+14155238886"
OTHER_NUMBER = "+14155230001"
ACCOUNT = "AC" + "0123456789abcdef" * 2
OTHER_ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "acme-auth-token-0123456789abcdef"
OTHER_TOKEN = "globex-auth-token-fedcba9876543210"
CONTACT = "+14155550100"

Invoke = Callable[[str, dict[str, Any]], Any]


# ---------------------------------------------------------------------------------------------- helpers
def sid(n: int | str, prefix: str = "SM") -> str:
    return prefix + str(n).rjust(32, "0")


def inbound(message_sid: str, **extra: str) -> dict[str, str]:
    return {
        "SmsMessageSid": message_sid, "NumMedia": "0", "ProfileName": "Zoë 🌵", "MessageType": "text",
        "SmsSid": message_sid, "WaId": CONTACT[1:], "SmsStatus": "received", "Body": "Hello there",
        "To": f"whatsapp:{NUMBER}", "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": message_sid,
        "AccountSid": ACCOUNT, "From": f"whatsapp:{CONTACT}", "ApiVersion": "2010-04-01", **extra,
    }


def status_form(message_sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": status, "SmsStatus": status,
        "AccountSid": ACCOUNT, "From": f"whatsapp:{NUMBER}", "To": f"whatsapp:{CONTACT}",
        "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01", **extra,
    }


def sign(params: dict[str, str], token: str = TOKEN, url: str = WEBHOOK_URL) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture
def events(api_event: ApiEvents) -> Callable[..., dict[str, Any]]:
    def make(path: str, params: dict[str, str], signature: str | None) -> dict[str, Any]:
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        return api_event("POST", path, form=params, headers={"user-agent": "TwilioProxy/1.1", **headers})

    return make


@pytest.fixture
def channel(invoke: Invoke, api_event: ApiEvents, claims: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """acme's Twilio channel (and globex's, another tenant with its own number, account and token)."""
    created = {}
    for tenant, number, account, token in [("acme", NUMBER, ACCOUNT, TOKEN),
                                           ("globex", OTHER_NUMBER, OTHER_ACCOUNT, OTHER_TOKEN)]:
        response = invoke("ChannelsApiFunction", api_event("POST", "/v1/channels", claims=claims(tenant), json={
            "provider": "twilio", "name": "Main", "phone_number": number, "account_sid": account,
            "auth_token": token, "messaging_service_sid": None, "location_id": None,
        }))
        assert response["statusCode"] == 201, response
        created[tenant] = body_of(response)
    assert created["acme"]["webhook_url"] == WEBHOOK_URL
    assert created["acme"]["status_callback_url"] == STATUS_URL
    return created["acme"]


def webhook(invoke: Invoke, events: Callable[..., dict[str, Any]], params: dict[str, str],
            signature: str | None = "sign") -> dict[str, Any]:
    signature = sign(params) if signature == "sign" else signature
    return invoke("WebhookTwilioFunction", events("/webhooks/twilio", params, signature))  # type: ignore[no-any-return]


def status_callback(invoke: Invoke, events: Callable[..., dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    event = events("/webhooks/twilio/status", params, sign(params, url=STATUS_URL))
    return invoke("StatusCallbackFunction", event)  # type: ignore[no-any-return]


def inbox(invoke: Invoke, api_event: ApiEvents, claims: Callable[..., dict[str, Any]], path: str,
          tenant: str = "acme") -> Any:
    response = invoke("InboxApiFunction", api_event("GET", path, claims=claims(tenant, admin=False)))
    assert response["statusCode"] == 200, response
    return body_of(response)


def item_counts(aws: Resources) -> dict[str, int]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return {
        logical: int(client.scan(TableName=aws.ref(logical), Select="COUNT")["Count"])
        for logical in ("MessagesTable", "ConversationsTable")
    }


def assert_twiml(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 200, response
    assert response["headers"]["Content-Type"] == "text/xml"
    assert response["body"] == "<Response/>"


@contextmanager
def aws_calls() -> Iterator[list[tuple[str, str]]]:
    """Every AWS API call made by any botocore client (boto3's and PynamoDB's) while the block runs."""
    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------- inbound
def test_signed_text_is_stored_and_listed_with_contact(invoke: Invoke, events: Any, channel: dict[str, Any],
                                                       api_event: ApiEvents, claims: Any) -> None:
    response = webhook(invoke, events, inbound(sid(1)))

    assert_twiml(response)
    (conversation,) = inbox(invoke, api_event, claims, "/v1/conversations")["items"]
    assert conversation["contact"] == {"phone": CONTACT, "name": "Zoë 🌵"}
    assert conversation["channel_id"] == channel["id"]
    assert conversation["provider"] == "twilio"
    assert conversation["unread_count"] == 1
    assert conversation["last_inbound_at"] == conversation["last_message_at"]
    (message,) = inbox(invoke, api_event, claims, f"/v1/conversations/{conversation['id']}/messages")["items"]
    assert message["direction"] == "inbound"
    assert message["provider_message_id"] == sid(1)
    assert message["type"] == "text"
    assert message["text"] == "Hello there"
    assert message["status"] == "received"
    assert message["sender"] == {"kind": "contact", "id": CONTACT}
    # the other tenant sees nothing
    assert inbox(invoke, api_event, claims, "/v1/conversations", tenant="globex")["items"] == []


def test_media_only_message_has_pending_media_with_content_types(invoke: Invoke, events: Any, channel: Any,
                                                                 api_event: ApiEvents, claims: Any) -> None:
    media = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid(2, 'MM')}/Media"
    params = inbound(sid(2, "MM"), Body="", NumMedia="2", MessageType="image",
                     MediaUrl0=f"{media}/ME0", MediaContentType0="image/jpeg",
                     MediaUrl1=f"{media}/ME1", MediaContentType1="video/mp4")

    assert_twiml(webhook(invoke, events, params))
    (conversation,) = inbox(invoke, api_event, claims, "/v1/conversations")["items"]
    (message,) = inbox(invoke, api_event, claims, f"/v1/conversations/{conversation['id']}/messages")["items"]
    assert message["type"] == "image"
    assert message["text"] is None
    assert [(m["content_type"], m["status"], m["url"]) for m in message["media"]] == [
        ("image/jpeg", "pending", None), ("video/mp4", "pending", None)
    ]


@pytest.mark.parametrize(
    ("signature", "why"),
    [(None, "missing"), ("", "empty"), ("dGhpcyBpcyBub3QgaXQ=", "wrong"),
     (sign(inbound(sid(3)), token=OTHER_TOKEN), "another channel's token"),
     (sign(inbound(sid(3)), url=STATUS_URL), "another URL")],
)
def test_bad_signature_is_401_and_nothing_is_stored(invoke: Invoke, events: Any, channel: Any, aws: Resources,
                                                    signature: str | None, why: str) -> None:
    response = webhook(invoke, events, inbound(sid(3)), signature)

    assert response["statusCode"] == 401, why
    assert body_of(response)["error"]["code"] == "invalid_signature"
    assert item_counts(aws) == {"MessagesTable": 0, "ConversationsTable": 0}


def test_signature_over_modified_body_is_401(invoke: Invoke, events: Any, channel: Any, aws: Resources) -> None:
    signature = sign(inbound(sid(4)))
    response = webhook(invoke, events, inbound(sid(4), Body="Hello therE"), signature)

    assert response["statusCode"] == 401
    assert item_counts(aws) == {"MessagesTable": 0, "ConversationsTable": 0}


def test_unknown_number_is_404(invoke: Invoke, events: Any, channel: Any, aws: Resources) -> None:
    params = inbound(sid(5), To="whatsapp:+14155239999")
    response = webhook(invoke, events, params)

    assert response["statusCode"] == 404
    assert item_counts(aws)["MessagesTable"] == 0


def test_account_sid_must_match_the_channel(invoke: Invoke, events: Any, channel: Any, aws: Resources) -> None:
    params = inbound(sid(6), AccountSid=OTHER_ACCOUNT)
    response = webhook(invoke, events, params, sign(params, token=OTHER_TOKEN))

    assert response["statusCode"] == 404
    assert item_counts(aws)["MessagesTable"] == 0


def test_disabled_number_is_404_even_while_the_channel_is_cached(
    invoke: Invoke, events: Any, channel: Any, aws: Resources, api_event: ApiEvents, claims: Any
) -> None:
    assert_twiml(webhook(invoke, events, inbound(sid(7))))  # warm: the channel is in this instance's cache
    deleted = invoke("ChannelsApiFunction", api_event("DELETE", f"/v1/channels/{channel['id']}", claims=claims()))
    assert deleted["statusCode"] == 204

    for message_sid in (sid(70), sid(7)):  # a new message and a redelivery of the stored one
        response = webhook(invoke, events, inbound(message_sid))
        assert response["statusCode"] == 404, response
        assert body_of(response)["error"]["code"] == "channel_not_found"
    assert item_counts(aws)["MessagesTable"] == 2  # the first message and its provider-id claim, nothing since


def test_a_number_connected_right_after_an_unknown_probe_gets_its_messages(
    invoke: Invoke, events: Any, channel: Any, aws: Resources, api_event: ApiEvents, claims: Any
) -> None:
    """Twilio never retries a 404 (the Fallback URL gets one call): a cached "no such channel" must not
    outlive the channel's creation by more than a second."""
    from gateway.store.channels_repo import MISS_CACHE_SECONDS

    new_number = "+14155230002"
    probe = webhook(invoke, events, inbound(sid(74), To=f"whatsapp:{new_number}"))
    assert probe["statusCode"] == 404  # this warm instance now caches the miss
    created = invoke("ChannelsApiFunction", api_event("POST", "/v1/channels", claims=claims(), json={
        "provider": "twilio", "name": "Second", "phone_number": new_number, "account_sid": ACCOUNT,
        "auth_token": TOKEN}))
    assert created["statusCode"] == 201, created
    time.sleep(MISS_CACHE_SECONDS)  # a wait, not a deadline: more time passing changes nothing

    assert_twiml(webhook(invoke, events, inbound(sid(75), To=f"whatsapp:{new_number}")))
    assert item_counts(aws)["MessagesTable"] == 2  # the message and its provider-id claim


def test_rotated_auth_token_is_accepted_at_once(invoke: Invoke, events: Any, channel: Any,
                                               api_event: ApiEvents, claims: Any) -> None:
    assert_twiml(webhook(invoke, events, inbound(sid(71))))  # warm, with the old token cached
    rotated = "rotated-auth-token-0123456789abcd"
    patched = invoke("ChannelsApiFunction", api_event("PATCH", f"/v1/channels/{channel['id']}", claims=claims(),
                                                      json={"auth_token": rotated}))
    assert patched["statusCode"] == 200, patched

    params = inbound(sid(72))
    assert_twiml(webhook(invoke, events, params, sign(params, token=rotated)))
    assert webhook(invoke, events, inbound(sid(73)))["statusCode"] == 401  # the old token no longer works


@pytest.mark.parametrize(
    ("body", "base64_encoded", "status"),
    [("", False, 400), ("%%%not a form", False, 400), ("not base64 at all!", True, 400),
     ('{"MessageSid": "SM1"}', False, 400), ("Body=" + "x" * 200_000, False, 413)],
    ids=["empty", "not-a-form", "bad-base64", "json", "oversized"],
)
def test_unparsable_body_is_4xx(invoke: Invoke, events: Any, channel: Any, aws: Resources,
                                body: str, base64_encoded: bool, status: int) -> None:
    event = events("/webhooks/twilio", {}, "c2ln")
    event["body"], event["isBase64Encoded"] = body, base64_encoded
    response = invoke("WebhookTwilioFunction", event)

    assert response["statusCode"] == status
    assert body_of(response)["error"]["message"]
    assert item_counts(aws)["MessagesTable"] == 0


def test_signed_but_malformed_content_is_400(invoke: Invoke, events: Any, channel: Any, aws: Resources) -> None:
    response = webhook(invoke, events, inbound(sid(8), Latitude="north", Longitude="east"))

    assert response["statusCode"] == 400
    assert body_of(response)["error"]["field"] == "Latitude"
    assert item_counts(aws)["MessagesTable"] == 0


def test_redelivery_answers_200_and_changes_nothing(invoke: Invoke, events: Any, channel: Any,
                                                    api_event: ApiEvents, claims: Any) -> None:
    params = inbound(sid(9))
    assert_twiml(webhook(invoke, events, params))
    before = inbox(invoke, api_event, claims, "/v1/conversations")["items"]

    assert_twiml(webhook(invoke, events, params))
    assert inbox(invoke, api_event, claims, "/v1/conversations")["items"] == before


def test_same_message_sid_ten_times_concurrently_is_stored_once(
    aws: Resources, atomic_dynamodb: None, events: Any, channel: Any, api_event: ApiEvents, claims: Any
) -> None:
    runtime = FunctionRuntime(aws, max_concurrency=10)  # ten Lambda instances, each with its own caches
    params = inbound(sid(10))
    event = events("/webhooks/twilio", params, sign(params))

    responses = at_once(lambda: runtime.invoke("WebhookTwilioFunction", json.loads(json.dumps(event))))

    assert [r["statusCode"] for r in responses] == [200] * 10
    (conversation,) = inbox(runtime.invoke, api_event, claims, "/v1/conversations")["items"]
    assert conversation["unread_count"] == 1
    messages = inbox(runtime.invoke, api_event, claims, f"/v1/conversations/{conversation['id']}/messages")["items"]
    assert [m["provider_message_id"] for m in messages] == [sid(10)]


def test_storage_failure_is_a_5xx(invoke: Invoke, events: Any, channel: Any, aws: Resources,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    webhook(invoke, events, inbound(sid(11)))  # warm: channel and token cached
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", broken)
    response = webhook(invoke, events, inbound(sid(12)))

    assert response["statusCode"] >= 500
    assert "disk on fire" not in response["body"]


def test_transaction_conflict_is_retried(invoke: Invoke, events: Any, channel: Any, api_event: ApiEvents,
                                         claims: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB cancels concurrent transactions on the same items with TransactionConflict; the loser retries."""
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    conflicts = iter([True, True])

    def conflicting(self: Any, items: list[Any]) -> None:
        if next(conflicts, False):
            raise TransactionCanceledException([("TransactionConflict", "conflict", None)] * len(items))
        return original(self, items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", conflicting)
    assert_twiml(webhook(invoke, events, inbound(sid(13))))
    assert next(conflicts, None) is None  # both conflicts happened
    (conversation,) = inbox(invoke, api_event, claims, "/v1/conversations")["items"]
    assert conversation["unread_count"] == 1


def test_warm_text_message_costs_one_dynamodb_request_and_no_kms(invoke: Invoke, events: Any, channel: Any) -> None:
    assert_twiml(webhook(invoke, events, inbound(sid(20))))  # first: resolves the channel, decrypts the token
    with aws_calls() as calls:
        assert_twiml(webhook(invoke, events, inbound(sid(21))))

    assert calls == [("dynamodb", "TransactWriteItems")]


# ---------------------------------------------------------------------------------------------- statuses
@pytest.fixture
def outbound() -> Callable[[str], tuple[str, str]]:
    """Record an outbound message as the send path does before calling the provider; returns its keys."""
    from gateway.bootstrap import ready
    from gateway.store.channels_repo import ChannelRepository
    from gateway.store.messages_repo import MessageRepository

    def create(tenant: str = "acme") -> tuple[str, str]:
        ready()
        (ch,) = ChannelRepository().list(tenant)
        item = MessageRepository().record_outbound(
            ch, conversation_id="cv_test", type="text", text="Your order shipped",
            sender={"kind": "operator", "id": "u1"},
        )
        return item.pk, item.sk

    return create


def stored(keys: tuple[str, str]) -> Any:
    from gateway.store.models import MessageModel

    return MessageModel.get(*keys, consistent_read=True)


def attach(keys: tuple[str, str], provider_id: str) -> str:
    from gateway.store.messages_repo import MessageRepository

    return MessageRepository().attach_provider_id("acme", "twilio", provider_id, *keys)


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])), ids="-".join)
def test_statuses_in_any_order_end_read(invoke: Invoke, events: Any, channel: Any, outbound: Any,
                                        order: tuple[str, ...]) -> None:
    keys = outbound()
    assert attach(keys, sid(30)) == "sent"
    for status in order:
        assert_twiml(status_callback(invoke, events, status_form(sid(30), status)))

    message = stored(keys)
    assert (message.status, message.provider_message_id, message.error) == ("read", sid(30), None)


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])), ids="-".join)
def test_statuses_before_the_send_recorded_its_id_are_merged(invoke: Invoke, events: Any, channel: Any,
                                                             outbound: Any, order: tuple[str, ...]) -> None:
    keys = outbound()
    for status in order:
        assert_twiml(status_callback(invoke, events, status_form(sid(31), status)))
    assert stored(keys).status == "queued"  # parked on the provider-id claim meanwhile

    assert attach(keys, sid(31)) == "read"
    message = stored(keys)
    assert (message.status, message.provider_message_id) == ("read", sid(31))
    # later callbacks go straight to the message and stay forward-only
    assert_twiml(status_callback(invoke, events, status_form(sid(31), "delivered")))
    assert stored(keys).status == "read"


def test_failed_after_delivered_stays_delivered(invoke: Invoke, events: Any, channel: Any, outbound: Any) -> None:
    keys = outbound()
    attach(keys, sid(32))
    assert_twiml(status_callback(invoke, events, status_form(sid(32), "delivered")))
    assert_twiml(status_callback(invoke, events, status_form(
        sid(32), "failed", ErrorCode="63016", ErrorMessage="Outside the window")))

    message = stored(keys)
    assert (message.status, message.error) == ("delivered", None)


def test_failed_before_delivery_stores_the_normalized_error(invoke: Invoke, events: Any, channel: Any,
                                                            outbound: Any) -> None:
    keys = outbound()
    attach(keys, sid(33))
    assert_twiml(status_callback(invoke, events, status_form(sid(33), "sent")))
    assert_twiml(status_callback(invoke, events, status_form(
        sid(33), "undelivered", ErrorCode="63024", ErrorMessage="Invalid message recipient")))
    assert_twiml(status_callback(invoke, events, status_form(sid(33), "read")))  # terminal: nothing moves it

    message = stored(keys)
    assert message.status == "failed"
    assert message.error == {"code": "invalid_recipient", "provider_code": "63024",
                             "message": "Invalid message recipient", "retryable": False}


def test_parked_failure_is_merged_with_its_error(invoke: Invoke, events: Any, channel: Any, outbound: Any) -> None:
    keys = outbound()
    assert_twiml(status_callback(invoke, events, status_form(sid(34), "failed", ErrorCode="63016")))

    assert attach(keys, sid(34)) == "failed"
    message = stored(keys)
    assert message.error["code"] == "outside_customer_service_window"
    assert message.error["provider_code"] == "63016"


def test_attach_is_idempotent_and_exclusive(channel: Any, outbound: Any) -> None:
    keys, other = outbound(), outbound()
    assert attach(keys, sid(35)) == "sent"
    assert attach(keys, sid(35)) == "sent"
    with pytest.raises(ValueError, match="another message"):
        attach(other, sid(35))


def test_status_callback_signature_and_channel_checks(invoke: Invoke, events: Any, channel: Any,
                                                      outbound: Any) -> None:
    keys = outbound()
    attach(keys, sid(36))
    params = status_form(sid(36), "delivered")
    no_status = {**params, "MessageStatus": "", "SmsStatus": ""}
    cases = [
        (events("/webhooks/twilio/status", params, sign(params, url=WEBHOOK_URL)), 401),
        (events("/webhooks/twilio/status", params, sign(params, token=OTHER_TOKEN, url=STATUS_URL)), 401),
        (events("/webhooks/twilio/status", params, None), 401),
        (events("/webhooks/twilio/status", {**params, "From": "whatsapp:+14155239999"}, "x"), 404),
        (events("/webhooks/twilio/status", no_status, sign(no_status, url=STATUS_URL)), 400),
    ]
    for event, expected in cases:
        assert invoke("StatusCallbackFunction", event)["statusCode"] == expected
    assert stored(keys).status == "sent"


def test_unknown_provider_status_is_acknowledged_and_ignored(invoke: Invoke, events: Any, channel: Any,
                                                             outbound: Any) -> None:
    keys = outbound()
    attach(keys, sid(37))
    assert_twiml(status_callback(invoke, events, status_form(sid(37), "receiving")))
    assert stored(keys).status == "sent"


def test_status_callback_form_is_what_twilio_sends(invoke: Invoke, api_event: ApiEvents, channel: Any) -> None:
    """A raw, url-encoded body as Twilio posts it (field order and encoding as on the wire)."""
    params = status_form(sid(38), "sent", EventType="SENT")
    raw = urlencode(params).encode()
    event = api_event("POST", "/webhooks/twilio/status", body=raw, headers={
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Twilio-Signature": sign(params, url=STATUS_URL),
    })
    assert event["isBase64Encoded"] is True
    assert_twiml(invoke("StatusCallbackFunction", event))


def test_a_status_for_a_channel_disabled_while_cached_is_404_and_changes_nothing(
    invoke: Invoke, events: Any, channel: Any, outbound: Any, api_event: ApiEvents, claims: Any
) -> None:
    keys = outbound()
    attach(keys, sid(39))
    assert_twiml(status_callback(invoke, events, status_form(sid(39), "delivered")))  # warm: the channel is cached
    deleted = invoke("ChannelsApiFunction", api_event("DELETE", f"/v1/channels/{channel['id']}", claims=claims()))
    assert deleted["statusCode"] == 204

    for params in (status_form(sid(39), "read"), status_form(sid(40), "delivered")):  # applied, or parked
        response = status_callback(invoke, events, params)
        assert response["statusCode"] == 404, response
        assert body_of(response)["error"]["code"] == "channel_not_found"
    assert stored(keys).status == "delivered"
    assert claim_item(sid(40)) is None  # nothing parked either


def test_a_status_naming_an_inbound_message_changes_nothing(invoke: Invoke, events: Any, channel: Any,
                                                            api_event: ApiEvents, claims: Any) -> None:
    assert_twiml(webhook(invoke, events, inbound(sid(41))))
    for status in ("read", "failed"):
        assert_twiml(status_callback(invoke, events, status_form(sid(41), status, ErrorCode="63016")))

    (conversation,) = inbox(invoke, api_event, claims, "/v1/conversations")["items"]
    (message,) = inbox(invoke, api_event, claims, f"/v1/conversations/{conversation['id']}/messages")["items"]
    assert (message["direction"], message["status"], message["error"]) == ("inbound", "received", None)


def test_a_parked_status_expires_unless_the_send_claims_it(invoke: Invoke, events: Any, channel: Any,
                                                           outbound: Any) -> None:
    """Parked statuses of ids no send of ours recorded (other apps on the account) carry the table's TTL; the
    claim a send attaches and the dedupe claims of inbound messages never expire (docs/decisions.md D1)."""
    from gateway.domain import ids
    from gateway.store.messages_repo import PARKED_STATUS_TTL

    before = ids.utcnow()
    assert_twiml(status_callback(invoke, events, status_form(sid(42), "delivered")))
    assert_twiml(status_callback(invoke, events, status_form(sid(43), "sent")))
    assert_twiml(webhook(invoke, events, inbound(sid(44))))

    for parked in (sid(42), sid(43)):
        expires_at = claim_item(parked)["expires_at"]
        assert (before + PARKED_STATUS_TTL).timestamp() - 1 <= expires_at
        assert expires_at <= (ids.utcnow() + PARKED_STATUS_TTL).timestamp()
    assert attach(outbound(), sid(43)) == "sent"
    assert "expires_at" not in claim_item(sid(43))
    assert "expires_at" not in claim_item(sid(44))
    assert "expires_at" in claim_item(sid(42))


def claim_item(provider_id: str) -> dict[str, Any] | None:
    from gateway.store.models import ProviderMessageModel
    from pynamodb.exceptions import DoesNotExist

    try:
        item = ProviderMessageModel.get(*ProviderMessageModel.key("acme", "twilio", provider_id), consistent_read=True)
    except DoesNotExist:
        return None
    return dict(item.attribute_values)
