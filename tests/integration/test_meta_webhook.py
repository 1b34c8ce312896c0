"""Meta's webhook in-process against moto with every resource of template.yaml (DESIGN §2 Webhooks, §3, §9).

Handlers are loaded and invoked like Lambda would (``local.runtime``) with HTTP API v2 events built by the
local gateway's own code. Notifications are the official spec's examples (``../shared/specs``), serialised as
Meta does and signed over those exact bytes. Channels are created through the channels API, conversations and
messages read through the inbox API: the contract's view, not the tables.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.client
import pytest

from local.provision import Resources
from local.runtime import FunctionRuntime
from local.testing import ApiEvents, at_once, readme_try_it
from tests.meta_support import (
    CONTACT_WA_ID,
    EXAMPLE_PHONE_NUMBER_ID,
    SPEC_PATH,
    change_value,
    meta_bytes,
    notification,
    sign,
    status,
    text_message,
    webhook_examples,
)

FUNCTION = "WebhookMetaFunction"
REPO = Path(__file__).resolve().parents[2]
APP_SECRET = "acme-meta-app-secret-0123456789"
OTHER_SECRET = "globex-meta-app-secret-9876543210"
GLOBAL_SECRET = "deployment-meta-app-secret-abcdef"
VERIFY_TOKEN = "acme-verify-token-0123"
CONTACT = "+" + CONTACT_WA_ID

Invoke = Callable[[str, dict[str, Any]], Any]


# ---------------------------------------------------------------------------------------------- harness
@dataclass
class Meta:
    """Drives the Meta webhook and reads the result back through the contract's APIs."""

    invoke: Invoke
    api_event: ApiEvents
    claims: Callable[..., dict[str, Any]]
    aws: Resources

    def connect(
        self,
        tenant: str = "acme",
        phone_number_id: str = EXAMPLE_PHONE_NUMBER_ID,
        app_secret: str | None = APP_SECRET,
        verify_token: str | None = VERIFY_TOKEN,
    ) -> dict[str, Any]:
        body = {
            "provider": "meta",
            "name": "Main",
            "phone_number_id": phone_number_id,
            "business_account_id": "419561257915477",
            "display_phone_number": "+15550783881",
            "access_token": f"EAAG-{tenant}-access-token-0123456789",
            "app_secret": app_secret,
            "verify_token": verify_token,
            "location_id": None,
        }
        event = self.api_event("POST", "/v1/channels", json=body, claims=self.claims(tenant, admin=True))
        response = self.invoke("ChannelsApiFunction", event)
        assert response["statusCode"] == 201, response
        return json.loads(response["body"])

    def event(self, body: bytes, signature: str | None, *, base64_encoded: bool = False) -> dict[str, Any]:
        headers = {"content-type": "application/json", "user-agent": "facebookexternalua"}
        if signature is not None:
            headers["x-hub-signature-256"] = signature
        event = self.api_event("POST", "/webhooks/meta", body=body, headers=headers)
        if base64_encoded:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    def post(self, payload: dict[str, Any] | bytes, secret: str | None = APP_SECRET, **kwargs: Any) -> dict[str, Any]:
        body = payload if isinstance(payload, bytes) else meta_bytes(payload)
        return self.invoke(FUNCTION, self.event(body, sign(body, secret) if secret else None, **kwargs))

    def disable(self, channel: dict[str, Any], tenant: str = "acme") -> None:
        event = self.api_event("DELETE", f"/v1/channels/{channel['id']}", claims=self.claims(tenant, admin=True))
        assert self.invoke("ChannelsApiFunction", event)["statusCode"] == 204

    def verify(self, **params: str) -> dict[str, Any]:
        query = urlencode({f"hub.{k}": v for k, v in params.items()})
        return self.invoke(FUNCTION, self.api_event("GET", "/webhooks/meta", query=query))

    def read(self, path: str, tenant: str = "acme", function: str = "InboxApiFunction", **query: str) -> Any:
        event = self.api_event("GET", path, query=query, claims=self.claims(tenant, admin=True))
        response = self.invoke(function, event)
        assert response["statusCode"] == 200, response
        return json.loads(response["body"])

    def conversations(self, tenant: str = "acme") -> list[dict[str, Any]]:
        return self.read("/v1/conversations", tenant)["items"]

    def messages(self, tenant: str = "acme") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for conversation in self.conversations(tenant):
            found += self.read(f"/v1/conversations/{conversation['id']}/messages", tenant, limit="100")["items"]
        return found

    def item_counts(self) -> dict[str, int]:
        client = boto3.client("dynamodb", region_name="us-east-1")
        return {
            logical: int(client.scan(TableName=self.aws.ref(logical), Select="COUNT")["Count"])
            for logical in ("MessagesTable", "ConversationsTable")
        }


@pytest.fixture
def meta(aws: Resources, invoke: Invoke, api_event: ApiEvents, claims: Callable[..., dict[str, Any]]) -> Meta:
    return Meta(invoke, api_event, claims, aws)


@pytest.fixture
def global_secret(aws: Resources, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployment with META_APP_SECRET (read at cold start, so set before the first invocation)."""
    from gateway.config import get_settings

    monkeypatch.setenv("META_APP_SECRET", GLOBAL_SECRET)
    get_settings.cache_clear()
    return GLOBAL_SECRET


@contextmanager
def aws_calls() -> Iterator[list[tuple[str, str]]]:
    """Every AWS API call made by any botocore client (boto3's and PynamoDB's) while the block runs."""
    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    setattr(botocore.client.BaseClient, "_make_api_call", counting)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def error_code(response: dict[str, Any]) -> str:
    return str(json.loads(response["body"])["error"]["code"])


def subset(actual: Any, expected: Any, where: str = "") -> None:
    """Every key of ``expected`` is in ``actual`` with that value (recursively for dicts)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing in {actual!r}"
            subset(actual[key], value, f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# ---------------------------------------------------------------------------------------------- the examples
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
EXPECTED: dict[str, dict[str, Any] | None] = {
    "Text Message": {"type": "text", "text": "Does it come in another color?", "provider_message_id": WAMID},
    "Text Message with Context (Product Inquiry)": {
        "type": "text",
        "text": "Is this still available?",
        "context": {
            "reply_to": {"provider_message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA"},
            "referred_product": {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"},
        },
    },
    "Text Message from Click to WhatsApp Ad": {
        "type": "text",
        "text": "Hello! Can I get more info on this?",
        "context": {"referral": {"source_type": "ad", "source_id": "120226305854810726"}},
    },
    "Reaction Message": {
        "type": "reaction",
        "content": {"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA", "emoji": "\U0001f44d"},
    },
    "Image Message": {"type": "image", "text": "Taj Mahal"},
    "Location Message": {
        "type": "location",
        "location": {
            "latitude": 37.44221496582,
            "longitude": -122.16165924072,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
        },
    },
    "Contact Sharing Message": {"type": "contacts"},
    "Unsupported Message": {"type": "unsupported", "content": {"provider_code": "131051"}},
    "Button Message": {"type": "button", "text": "Unsubscribe", "content": {"button": {"payload": "Unsubscribe"}}},
    "Interactive List Reply Message": {
        "type": "interactive",
        "text": "Priority Mail Express",
        "content": {"interactive_type": "list_reply", "id": "priority_express", "title": "Priority Mail Express"},
    },
    "Interactive Button Reply Message": {
        "type": "interactive",
        "text": "Cancel",
        "content": {"interactive_type": "button_reply", "id": "cancel-button", "title": "Cancel"},
    },
    "Order Message": {
        "type": "order",
        "content": {
            "catalog_id": "194836987003835",
            "product_items": [
                {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
                {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"},
            ],
        },
    },
    "System Message": {"type": "system", "content": {"system_type": "user_changed_number", "new_wa_id": "12195555358"}},
    "Group Create Message": None,
    "Group Settings Update": None,
    "Group Remove Participants": None,
}


def test_the_examples_come_from_the_spec_file() -> None:
    assert SPEC_PATH.is_file(), SPEC_PATH
    assert sorted(webhook_examples()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_spec_example_signed_is_accepted_and_stored(meta: Meta, name: str) -> None:
    channel = meta.connect()
    answer = ok(meta.post(webhook_examples()[name]))

    expected = EXPECTED[name]
    if expected is None:  # group events: answered, counted, nothing stored
        assert answer["other_fields"] == 1
        assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}
        return
    (message,) = meta.messages()
    subset(message, expected, name)
    assert message["direction"] == "inbound"
    assert message["provider"] == "meta"
    assert message["status"] == "received"
    assert message["channel_id"] == channel["id"]
    assert message["sender"] == {"kind": "contact", "id": CONTACT}
    (conversation,) = meta.conversations()
    assert conversation["contact"]["phone"] == CONTACT
    if name != "System Message":  # the only example without a value.contacts array
        assert conversation["contact"]["name"] == "Sheena Nelson"


def test_image_is_stored_as_pending_media_with_metas_mime_type_and_sha256(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(webhook_examples()["Image Message"]))
    (message,) = meta.messages()
    (media,) = message["media"]
    subset(
        media,
        {
            "content_type": "image/jpeg",
            "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
            "status": "pending",
            "url": None,
            "caption": "Taj Mahal",
        },
    )


# ---------------------------------------------------------------------------------------------- batches
def test_three_entries_with_two_messages_each_store_six(meta: Meta) -> None:
    meta.connect()
    payload: dict[str, Any] = {"object": "whatsapp_business_account", "entry": []}
    for e in range(3):
        senders = [f"1650555{e}{m}00" for m in range(2)]
        messages = [text_message(f"wamid.batch.{e}.{m}", f"entry {e} message {m}", sender=senders[m]) for m in range(2)]
        payload["entry"].append(notification(change_value(messages=messages))["entry"][0])

    answer = ok(meta.post(payload))

    assert answer["stored"] == 6
    messages = meta.messages()
    assert sorted(m["text"] for m in messages) == sorted(f"entry {e} message {m}" for e in range(3) for m in range(2))
    assert len(meta.conversations()) == 6


def test_messages_and_statuses_in_one_notification_are_both_handled(meta: Meta, outbound: Any) -> None:
    meta.connect()
    keys = outbound("wamid.out.mixed")
    payload = notification(
        change_value(
            messages=[text_message("wamid.in.mixed", "thanks!")], statuses=[status("wamid.out.mixed", "read")]
        ),
        change_value(statuses=[status("wamid.out.mixed", "delivered")]),
    )

    answer = ok(meta.post(payload))

    assert (answer["stored"], answer["statuses"]) == (1, {"applied": 1, "stale": 1})
    assert [m["text"] for m in meta.messages() if m["direction"] == "inbound"] == ["thanks!"]
    assert stored(keys).status == "read"


def test_a_redelivered_notification_changes_nothing(meta: Meta) -> None:
    meta.connect()
    payload = notification(change_value(messages=[text_message("wamid.again")]))
    assert ok(meta.post(payload))["stored"] == 1
    before = meta.item_counts()
    answer = ok(meta.post(payload))
    assert (answer["stored"], answer["duplicates"]) == (0, 1)
    assert meta.item_counts() == before
    assert meta.conversations()[0]["unread_count"] == 1


def test_value_errors_unknown_numbers_and_odd_items_answer_200_and_are_counted(meta: Meta, global_secret: str) -> None:
    meta.connect()
    payload = notification(
        change_value(
            messages=[text_message("wamid.good"), {"id": "wamid.nofrom", "type": "text"}],
            errors=[{"code": 131000, "title": "Something went wrong"}],
        ),
        change_value("999999999", messages=[text_message("wamid.unknown")]),
    )
    payload["entry"][0]["changes"].append({"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}})

    answer = ok(meta.post(payload, secret=global_secret))

    assert answer | {"statuses": {}} == {
        "received": True,
        "stored": 1,
        "duplicates": 0,
        "statuses": {},
        "rejected_items": 1,
        "provider_errors": 1,
        "unknown_phone_numbers": 1,
        "other_fields": 1,
    }
    assert [m["provider_message_id"] for m in meta.messages()] == ["wamid.good"]


def test_a_disabled_channel_answers_as_unknown(meta: Meta, global_secret: str) -> None:
    meta.disable(meta.connect(app_secret=None))

    answer = ok(meta.post(notification(change_value(messages=[text_message("wamid.late")])), secret=global_secret))

    assert answer["unknown_phone_numbers"] == 1
    assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}


def test_a_channel_disabled_while_cached_answers_as_unknown_and_changes_nothing(meta: Meta, outbound: Any) -> None:
    """The channel's own app secret still verifies the bytes while this instance has it cached; the writes'
    re-check of the number's route claim is what refuses the message and the statuses."""
    channel = meta.connect()
    keys = outbound("wamid.out.disabled")
    ok(meta.post(notification(change_value(messages=[text_message("wamid.before")]))))  # warm: channel cached
    meta.disable(channel)
    before = meta.item_counts()

    payload = notification(change_value(
        messages=[text_message("wamid.after")],
        statuses=[status("wamid.out.disabled", "read"), status("wamid.never.sent", "delivered")],
    ))
    answer = ok(meta.post(payload))

    assert (answer["unknown_phone_numbers"], answer["stored"], answer["statuses"]) == (1, 0, {})
    assert meta.item_counts() == before  # no message, no parked status
    assert stored(keys).status == "sent"
    # The cache entry was dropped: from now on no secret of ours is bound to the number (docs/decisions.md D8).
    assert meta.post(notification(change_value(statuses=[status("wamid.out.disabled", "read")])))["statusCode"] == 401
    assert stored(keys).status == "sent"


def test_a_status_naming_an_inbound_message_changes_nothing(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(notification(change_value(messages=[text_message("wamid.inbound")]))))
    failed = status("wamid.inbound", "failed", errors=[{"code": 131047, "title": "Re-engagement message"}])

    answer = ok(meta.post(notification(change_value(statuses=[status("wamid.inbound", "read"), failed]))))

    assert answer["statuses"] == {"stale": 2}
    (message,) = meta.messages()
    assert (message["direction"], message["status"], message["error"]) == ("inbound", "received", None)


# ---------------------------------------------------------------------------------------------- signatures
def test_an_unsigned_notification_naming_100_numbers_costs_a_few_reads(meta: Meta) -> None:
    """Before a signature has verified, at most MAX_UNKNOWN_BEFORE_VERIFIED unknown numbers are looked up; a
    known channel whose secret does not verify the bytes ends the lookups at once."""
    from gateway.services.meta_webhooks import MAX_UNKNOWN_BEFORE_VERIFIED

    meta.connect()
    unknown = [f"9{n:09d}" for n in range(99)]
    for numbers, secret, most_reads in [
        ([*unknown, EXAMPLE_PHONE_NUMBER_ID], "not-our-secret", MAX_UNKNOWN_BEFORE_VERIFIED),
        ([*unknown, EXAMPLE_PHONE_NUMBER_ID], APP_SECRET, MAX_UNKNOWN_BEFORE_VERIFIED),  # named too late to vouch
        ([EXAMPLE_PHONE_NUMBER_ID, *unknown], "not-our-secret", 2),  # its route claim and channel, then 401
    ]:
        body = meta_bytes(notification(*(change_value(n, messages=[text_message(f"wamid.{n}")]) for n in numbers)))
        with aws_calls() as calls:
            response = meta.invoke(FUNCTION, meta.event(body, sign(body, secret)))
        assert response["statusCode"] == 401, response
        assert calls.count(("dynamodb", "GetItem")) <= most_reads, (numbers[0], secret)
        assert {operation for _, operation in calls} <= {"GetItem", "Decrypt"}
    assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}


def test_once_a_known_channel_verified_the_rest_of_the_numbers_are_looked_up(meta: Meta) -> None:
    meta.connect()
    numbers = [EXAMPLE_PHONE_NUMBER_ID, *(f"9{n:09d}" for n in range(99))]
    payload = notification(*(change_value(n, messages=[text_message(f"wamid.{n}")]) for n in numbers))

    answer = ok(meta.post(payload))

    assert (answer["stored"], answer["unknown_phone_numbers"]) == (1, 99)


def test_missing_or_wrong_signature_is_401_and_stores_nothing(meta: Meta) -> None:
    meta.connect()
    meta.connect("globex", phone_number_id="222222222", app_secret=OTHER_SECRET, verify_token=None)
    body = meta_bytes(notification(change_value(messages=[text_message("wamid.forged")])))
    tampered = body.replace(b"hello", b"HELLO")
    for event in (
        meta.event(body, None),
        meta.event(body, ""),
        meta.event(body, "sha256=" + "0" * 64),
        meta.event(body, sign(body, "not-our-secret")),
        meta.event(body, sign(body, OTHER_SECRET)),  # another tenant's real secret cannot vouch for acme's number
        meta.event(tampered, sign(body, APP_SECRET)),
        meta.event(body, sign(body, APP_SECRET).replace("sha256=", "sha1=")),
    ):
        response = meta.invoke(FUNCTION, event)
        assert response["statusCode"] == 401, response
        assert error_code(response) == "invalid_signature"
    assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}


def test_unknown_number_without_any_secret_of_ours_is_401(meta: Meta) -> None:
    meta.connect()
    body = meta_bytes(notification(change_value("999999999", messages=[text_message("wamid.x")])))
    assert meta.invoke(FUNCTION, meta.event(body, sign(body, APP_SECRET)))["statusCode"] == 401


def test_non_ascii_signed_over_metas_escaped_bytes_is_accepted_and_a_reserialisation_is_not(meta: Meta) -> None:
    meta.connect()
    payload = notification(
        change_value(
            messages=[text_message("wamid.accents", "¿Tienen envío a Bogotá? 🚚")],
            contacts=[{"profile": {"name": "Lucía Gómez"}, "wa_id": CONTACT_WA_ID}],
        )
    )
    escaped = meta_bytes(payload)
    assert escaped.isascii() and b"\\u00ed" in escaped
    signature = sign(escaped, APP_SECRET)

    reserialised = json.dumps(payload, ensure_ascii=False).encode()
    response = meta.invoke(FUNCTION, meta.event(reserialised, signature))
    assert response["statusCode"] == 401, response

    ok(meta.invoke(FUNCTION, meta.event(escaped, signature)))
    (message,) = meta.messages()
    assert message["text"] == "¿Tienen envío a Bogotá? 🚚"
    assert meta.conversations()[0]["contact"]["name"] == "Lucía Gómez"


def test_base64_encoded_bodies_are_verified_over_the_decoded_bytes(meta: Meta) -> None:
    meta.connect()
    body = meta_bytes(notification(change_value(messages=[text_message("wamid.b64", "encoded")])))
    ok(meta.invoke(FUNCTION, meta.event(body, sign(body, APP_SECRET), base64_encoded=True)))
    assert [m["text"] for m in meta.messages()] == ["encoded"]


def test_global_secret_vouches_for_channels_without_their_own(meta: Meta, global_secret: str) -> None:
    meta.connect(app_secret=None)
    ok(meta.post(notification(change_value(messages=[text_message("wamid.global")])), secret=global_secret))
    assert [m["provider_message_id"] for m in meta.messages()] == ["wamid.global"]
    body = meta_bytes(notification(change_value(messages=[text_message("wamid.own")])))
    assert meta.invoke(FUNCTION, meta.event(body, sign(body, APP_SECRET)))["statusCode"] == 401


# ---------------------------------------------------------------------------------------------- bad bodies
@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[1, 2]", b'{"object": "whatsapp_business_account"}', b"\xff\xfe\x00{"]
)
def test_malformed_json_is_400(meta: Meta, body: bytes) -> None:
    meta.connect()
    for event in (
        meta.event(body, sign(body, APP_SECRET)),
        meta.event(body, sign(body, APP_SECRET), base64_encoded=True),
    ):
        response = meta.invoke(FUNCTION, event)
        assert response["statusCode"] == 400, response
        assert json.loads(response["body"])["error"]["message"]
    assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}


def test_malformed_json_with_a_global_secret_is_401_unless_signed(meta: Meta, global_secret: str) -> None:
    """With a global secret the bytes are checked before anything is parsed."""
    meta.connect()
    assert meta.invoke(FUNCTION, meta.event(b"{nope", sign(b"{nope", global_secret)))["statusCode"] == 400
    assert meta.invoke(FUNCTION, meta.event(b"{nope", None))["statusCode"] == 401


def test_oversized_body_is_413(meta: Meta) -> None:
    meta.connect()
    payload = notification(change_value(messages=[text_message("wamid.huge", "x" * (3 * 1024 * 1024 + 100 * 1024))]))
    body = meta_bytes(payload)
    for encoded in (False, True):
        response = meta.invoke(FUNCTION, meta.event(body, sign(body, APP_SECRET), base64_encoded=encoded))
        assert response["statusCode"] == 413, response
    assert meta.item_counts() == {"MessagesTable": 0, "ConversationsTable": 0}


def test_invalid_base64_is_400(meta: Meta) -> None:
    event = meta.event(b"{}", sign(b"{}", APP_SECRET))
    event["body"], event["isBase64Encoded"] = "%%%not base64%%%", True
    assert meta.invoke(FUNCTION, event)["statusCode"] == 400


def test_storage_failure_is_a_5xx_and_the_retry_is_safe(meta: Meta, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    meta.connect()
    ok(meta.post(notification(change_value(messages=[text_message("wamid.warm")]))))
    original = DynamoDBBackend.transact_write_items

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    payload = notification(change_value(messages=[text_message("wamid.retry", "retried")]))
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", broken)
    response = meta.post(payload)
    assert response["statusCode"] >= 500
    assert "disk on fire" not in response["body"]

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", original)
    assert ok(meta.post(payload))["stored"] == 1  # Meta's retry
    assert ok(meta.post(payload))["duplicates"] == 1
    assert sorted(m["provider_message_id"] for m in meta.messages()) == ["wamid.retry", "wamid.warm"]


# ---------------------------------------------------------------------------------------------- verification GET
def test_verification_with_the_right_token_answers_the_challenge_and_is_recorded(meta: Meta) -> None:
    channel = meta.connect()
    assert channel["webhook_verified_at"] is None

    response = meta.verify(mode="subscribe", verify_token=VERIFY_TOKEN, challenge="1158201444")

    assert response["statusCode"] == 200, response
    assert response["headers"]["Content-Type"] == "text/plain"
    assert response["body"] == "1158201444"
    after = meta.read(f"/v1/channels/{channel['id']}", function="ChannelsApiFunction")
    assert after["webhook_verified_at"] and after["webhook_verified_at"].endswith("Z")


def test_a_generated_verify_token_works_too(meta: Meta) -> None:
    channel = meta.connect(verify_token=None)
    assert channel["verify_token"]
    response = meta.verify(mode="subscribe", verify_token=channel["verify_token"], challenge="42")
    assert (response["statusCode"], response["body"]) == (200, "42")


@pytest.mark.parametrize(
    "params",
    [
        {"mode": "subscribe", "verify_token": "wrong-verify-token", "challenge": "1"},
        {"mode": "unsubscribe", "verify_token": VERIFY_TOKEN, "challenge": "1"},
        {"verify_token": VERIFY_TOKEN, "challenge": "1"},
        {"mode": "subscribe", "challenge": "1"},
        {"mode": "subscribe", "verify_token": VERIFY_TOKEN},
    ],
)
def test_verification_without_the_right_token_is_403(meta: Meta, params: dict[str, str]) -> None:
    meta.connect()
    response = meta.verify(**params)
    assert response["statusCode"] == 403, response
    assert meta.read("/v1/channels", function="ChannelsApiFunction")["items"][0]["webhook_verified_at"] is None


@pytest.mark.parametrize(
    "challenge", ["<script>alert(1)</script>", "1<b>2</b>", '"><img src=x onerror=alert(1)>', "a b", "1\r\nX-Bad: 1"]
)
def test_a_challenge_with_markup_is_never_reflected(meta: Meta, challenge: str) -> None:
    meta.connect()
    response = meta.verify(mode="subscribe", verify_token=VERIFY_TOKEN, challenge=challenge)
    assert response["statusCode"] == 403
    assert challenge not in response["body"]
    assert "<" not in response["body"].replace("\\u003c", "")


def test_a_disabled_channels_token_is_refused(meta: Meta) -> None:
    channel = meta.connect()
    event = meta.api_event("DELETE", f"/v1/channels/{channel['id']}", claims=meta.claims("acme", admin=True))
    assert meta.invoke("ChannelsApiFunction", event)["statusCode"] == 204
    assert meta.verify(mode="subscribe", verify_token=VERIFY_TOKEN, challenge="1")["statusCode"] == 403


def test_a_repeated_challenge_parameter_is_refused(meta: Meta) -> None:
    meta.connect()
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1&hub.challenge=2"
    response = meta.invoke(FUNCTION, meta.api_event("GET", "/webhooks/meta", query=query))
    assert response["statusCode"] == 403


# ---------------------------------------------------------------------------------------------- concurrency
def test_the_same_message_ten_times_concurrently_is_stored_once(meta: Meta, atomic_dynamodb: None) -> None:
    meta.connect()
    runtime = FunctionRuntime(meta.aws, max_concurrency=10)  # ten Lambda instances, each with its own caches
    body = meta_bytes(notification(change_value(messages=[text_message("wamid.concurrent", "only once")])))
    event = meta.event(body, sign(body, APP_SECRET))

    answers = [ok(r) for r in at_once(lambda: runtime.invoke(FUNCTION, copy.deepcopy(event)))]

    assert sum(a["stored"] for a in answers) == 1
    assert sum(a["duplicates"] for a in answers) == 9
    (conversation,) = meta.conversations()
    assert conversation["unread_count"] == 1
    assert [m["text"] for m in meta.messages()] == ["only once"]


# ---------------------------------------------------------------------------------------------- statuses
@pytest.fixture
def outbound(aws: Resources) -> Callable[[str], tuple[str, str]]:
    """An outbound message as the send path records it, with Meta's wamid attached (status ``sent``)."""
    from gateway.bootstrap import ready
    from gateway.store.channels_repo import ChannelRepository
    from gateway.store.messages_repo import MessageRepository

    def create(wamid: str, tenant: str = "acme") -> tuple[str, str]:
        ready()
        (ch,) = ChannelRepository().list(tenant)
        repo = MessageRepository()
        item = repo.record_outbound(
            ch,
            conversation_id="cv_meta_test",
            type="text",
            text="Your order shipped",
            sender={"kind": "operator", "id": "u1"},
        )
        repo.attach_provider_id(tenant, "meta", wamid, item.pk, item.sk)
        return item.pk, item.sk

    return create


def stored(keys: tuple[str, str]) -> Any:
    from gateway.store.models import MessageModel

    return MessageModel.get(*keys, consistent_read=True)


def _forward(current: str, new: str) -> str:
    from gateway.domain.status import may_replace

    return new if may_replace(current, new) else current


ORDERS = list(itertools.permutations(["sent", "delivered", "read", "failed"]))


def test_statuses_in_every_order_only_move_forward(meta: Meta, outbound: Any) -> None:
    """All 24 orders of sent/delivered/read/failed, each against its own message, plus every duplicate."""
    meta.connect()
    keys = {order: outbound(f"wamid.order.{'-'.join(order)}") for order in ORDERS}
    for order in ORDERS:
        wamid = f"wamid.order.{'-'.join(order)}"
        for value in order:
            ok(meta.post(notification(change_value(statuses=[status(wamid, value)]))))
        answer = ok(meta.post(notification(change_value(statuses=[status(wamid, order[-1])]))))
        assert answer["statuses"] == {"stale": 1}  # the same status again changes nothing

    for order in ORDERS:
        expected = reduce(_forward, order, "sent")
        message = stored(keys[order])
        assert message.status == expected, order
        assert (message.error is not None) == (expected == "failed"), order


def test_played_counts_as_read(meta: Meta, outbound: Any) -> None:
    meta.connect()
    keys = outbound("wamid.voice")
    ok(meta.post(notification(change_value(statuses=[status("wamid.voice", "played")]))))
    assert stored(keys).status == "read"


def test_a_failed_status_stores_the_normalized_error_with_metas_code(meta: Meta, outbound: Any) -> None:
    meta.connect()
    keys = outbound("wamid.fails")
    failed = status(
        "wamid.fails",
        "failed",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "More than 24 hours have passed since the customer last replied."},
            }
        ],
        pricing={"billable": False, "pricing_model": "PMP", "category": "service"},
    )
    assert ok(meta.post(notification(change_value(statuses=[failed]))))["statuses"] == {"applied": 1}

    message = stored(keys)
    assert message.status == "failed"
    assert message.error == {
        "code": "outside_customer_service_window",
        "provider_code": "131047",
        "message": "Re-engagement message: More than 24 hours have passed since the customer last replied.",
        "retryable": False,
    }
    assert message.status_details["pricing"]["category"] == "service"
    (view,) = meta.read("/v1/conversations/cv_meta_test/messages")["items"]
    assert view["error"]["provider_code"] == "131047"


def test_a_status_before_the_send_recorded_its_wamid_is_parked(meta: Meta) -> None:
    meta.connect()
    answer = ok(meta.post(notification(change_value(statuses=[status("wamid.not.yet", "delivered")]))))
    assert answer["statuses"] == {"parked": 1}


# ---------------------------------------------------------------------------------------------- cost and time
@pytest.mark.parametrize("mode", ["channel secret", "global secret"])
def test_a_warm_text_message_costs_one_dynamodb_request_and_no_kms(
    meta: Meta, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = APP_SECRET
    if mode == "global secret":
        from gateway.config import get_settings

        monkeypatch.setenv("META_APP_SECRET", GLOBAL_SECRET)
        get_settings.cache_clear()
        secret = GLOBAL_SECRET
    meta.connect(app_secret=None if mode == "global secret" else APP_SECRET)
    ok(meta.post(notification(change_value(messages=[text_message("wamid.cold")])), secret=secret))  # warms caches

    body = meta_bytes(notification(change_value(messages=[text_message("wamid.warm")])))
    event = meta.event(body, sign(body, secret))
    with aws_calls() as calls:
        assert ok(meta.invoke(FUNCTION, event))["stored"] == 1

    assert calls == [("dynamodb", "TransactWriteItems")]


def test_a_cold_text_message_uses_only_what_the_template_grants(meta: Meta, outbound: Any) -> None:
    """The calls behind the IAM policy of WebhookMetaFunction in template.yaml (no DescribeTable, no Query)."""
    meta.connect()
    with aws_calls() as calls:
        ok(meta.post(notification(change_value(messages=[text_message("wamid.first")]))))
        assert meta.verify(mode="subscribe", verify_token=VERIFY_TOKEN, challenge="1")["statusCode"] == 200
    assert calls == [
        ("dynamodb", "GetItem"),  # route claim meta#<phone_number_id>
        ("dynamodb", "GetItem"),  # the channel
        ("kms", "Decrypt"),  # its app secret (then cached)
        ("dynamodb", "TransactWriteItems"),  # claim + message + conversation + contact
        ("dynamodb", "GetItem"),  # route claim meta-verify#<token>, read afresh
        ("dynamodb", "GetItem"),
        ("dynamodb", "UpdateItem"),  # webhook_verified_at
    ]
    outbound("wamid.out.cold")
    with aws_calls() as calls:
        ok(meta.post(notification(change_value(statuses=[status("wamid.out.cold", "delivered")]))))
    # the provider-id claim, then the message's update with the number's route claim re-checked
    assert calls == [("dynamodb", "GetItem"), ("dynamodb", "TransactWriteItems")]


def test_warm_handler_time(meta: Meta) -> None:
    """The handler's own warm time over 200 notifications: signature, parsing, normalization, the item
    serialisation, logs and metrics, with DynamoDB's answer to the one transaction made instant (moto copies
    the whole table on every transaction, which would measure moto). A sanity bound, not a benchmark gate."""
    meta.connect()
    events = []
    for i in range(201):
        body = meta_bytes(notification(change_value(messages=[text_message(f"wamid.timed.{i}", f"message {i}")])))
        events.append(meta.event(body, sign(body, APP_SECRET)))
    ok(meta.invoke(FUNCTION, events[0]))  # cold: resolves the channel, decrypts its secret

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def instant(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append(operation_name)
        if operation_name == "TransactWriteItems":
            return {}
        return original(self, operation_name, api_params)

    times = []
    setattr(botocore.client.BaseClient, "_make_api_call", instant)  # noqa: B010
    try:
        for event in events[1:]:
            started = time.perf_counter()
            response = meta.invoke(FUNCTION, event)
            times.append(time.perf_counter() - started)
            assert response["statusCode"] == 200, response
    finally:
        setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010

    assert calls == ["TransactWriteItems"] * 200
    median, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95)]
    print(
        f"\nwarm Meta webhook handler, in-process: median {median * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms "
        f"over {len(times)} calls"
    )
    assert median < 0.05


# ---------------------------------------------------------------------------------------------- sample events
def test_the_sample_events_work(meta: Meta) -> None:
    """events/meta_*.json (for ``make invoke`` / ``sam local invoke``) are made for the README's "Try it" Meta
    channel: phone number id 106540352242922, its app secret and verify token."""
    sample = readme_try_it()["channels"]["meta"]
    meta.connect(app_secret=sample["app_secret"], verify_token=sample["verify_token"])
    events = REPO / "events"
    verify = meta.invoke(FUNCTION, json.loads((events / "meta_verify.json").read_text()))
    assert (verify["statusCode"], verify["body"]) == (200, "1158201444")
    assert ok(meta.invoke(FUNCTION, json.loads((events / "meta_text.json").read_text())))["stored"] == 1
    assert ok(meta.invoke(FUNCTION, json.loads((events / "meta_image.json").read_text())))["stored"] == 1
    answer = ok(meta.invoke(FUNCTION, json.loads((events / "meta_statuses.json").read_text())))
    assert answer["statuses"] == {"parked": 2}
