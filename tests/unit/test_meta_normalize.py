"""Meta notifications → normalized messages and statuses (PROTOCOLS §8): every type, every batch shape."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from gateway.domain.errors import BadRequest
from gateway.domain.message import MESSAGE_TYPES
from gateway.providers import meta_webhook as mw
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.meta_support import (
    CONTACT_WA_ID,
    change_value,
    meta_bytes,
    notification,
    status,
    text_message,
    webhook_examples,
)


def only_message(payload: dict[str, Any]) -> Any:
    parsed = mw.parse_notification(meta_bytes(payload))
    (change,) = parsed.changes
    content = mw.normalize_change(change.value)
    assert not content.rejected
    (message,) = content.messages
    return message


# ------------------------------------------------------------------------------------ the spec's examples
def test_the_spec_has_the_sixteen_examples() -> None:
    assert len(webhook_examples()) == 16


def test_text() -> None:
    message = only_message(webhook_examples()["Text Message"])
    assert message.type == "text"
    assert message.text == "Does it come in another color?"
    assert message.contact_phone == "+16505551234"
    assert message.contact.wa_user_id is None
    assert message.contact.name == "Sheena Nelson"
    assert message.provider == "meta"
    assert message.provider_message_id.startswith("wamid.")
    assert message.provider_timestamp == "2025-06-08T20:59:43.000Z"
    assert message.context is None


def test_text_with_product_inquiry_context() -> None:
    message = only_message(webhook_examples()["Text Message with Context (Product Inquiry)"])
    assert message.text == "Is this still available?"
    assert message.context == {
        "reply_to": {
            "provider_message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
            "from": "+15550783881",
        },
        "referred_product": {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"},
    }


def test_text_from_click_to_whatsapp_ad_keeps_the_referral() -> None:
    message = only_message(webhook_examples()["Text Message from Click to WhatsApp Ad"])
    referral = message.context["referral"]
    assert referral["source_type"] == "ad"
    assert referral["source_id"] == "120226305854810726"
    assert referral["headline"] == "Chat with us"
    assert referral["ctwa_clid"].startswith("Aff-")
    assert referral["welcome_message"] == {"text": "Hi there! Let us know how we can help!"}


def test_reaction_links_to_its_target() -> None:
    message = only_message(webhook_examples()["Reaction Message"])
    assert message.type == "reaction"
    assert message.content == {
        "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA",
        "emoji": "\U0001f44d",
        "removed": False,
    }
    assert message.text is None  # a reaction never triggers keyword auto-replies


def test_image_is_a_pending_media_reference_with_caption() -> None:
    message = only_message(webhook_examples()["Image Message"])
    assert message.type == "image"
    assert message.text == "Taj Mahal"
    (media,) = message.media
    assert media.to_item() == {
        "content_type": "image/jpeg",
        "provider_media_id": "1003383421387256",
        "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
        "caption": "Taj Mahal",
        "status": "pending",
    }


def test_location() -> None:
    message = only_message(webhook_examples()["Location Message"])
    assert message.type == "location"
    assert message.location == {
        "latitude": 37.44221496582,
        "longitude": -122.16165924072,
        "name": "Philz Coffee",
        "address": "101 Forest Ave, Palo Alto, CA 94301",
        "url": "https://philzcoffee.com/",
    }


def test_shared_contacts_keep_their_non_ascii_names() -> None:
    message = only_message(webhook_examples()["Contact Sharing Message"])
    assert message.type == "contacts"
    (card,) = message.content["contacts"]
    assert card["name"]["formatted_name"] == "Lucía Gómez"
    assert card["phones"][0]["wa_id"] == "19835552319"
    assert message.text == "Lucía Gómez"
    assert message.contact.name == "Sheena Nelson"  # the sender, not the shared card


def test_unsupported_keeps_metas_error_code() -> None:
    message = only_message(webhook_examples()["Unsupported Message"])
    assert message.type == "unsupported"
    assert message.content["provider_code"] == "131051"
    assert message.content["errors"][0] == {
        "code": "unsupported_message_type",
        "provider_code": "131051",
        "message": "Message type unknown: Message type is currently not supported.",
        "retryable": False,
    }


def test_template_quick_reply_button() -> None:
    message = only_message(webhook_examples()["Button Message"])
    assert message.type == "button"
    assert message.content == {"button": {"text": "Unsubscribe", "payload": "Unsubscribe"}}
    assert message.text == "Unsubscribe"
    assert (
        message.context["reply_to"]["provider_message_id"]
        == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA"
    )


def test_list_reply() -> None:
    message = only_message(webhook_examples()["Interactive List Reply Message"])
    assert message.type == "interactive"
    assert message.content == {
        "interactive_type": "list_reply",
        "id": "priority_express",
        "title": "Priority Mail Express",
        "description": "Next Day to 2 Days",
    }
    assert message.text == "Priority Mail Express"


def test_button_reply() -> None:
    message = only_message(webhook_examples()["Interactive Button Reply Message"])
    assert message.type == "interactive"
    assert message.content == {"interactive_type": "button_reply", "id": "cancel-button", "title": "Cancel"}
    assert message.text == "Cancel"


def test_order() -> None:
    message = only_message(webhook_examples()["Order Message"])
    assert message.type == "order"
    assert message.content == {
        "catalog_id": "194836987003835",
        "text": None,
        "product_items": [
            {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
            {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"},
        ],
    }


def test_system_number_change_has_no_contacts_array() -> None:
    message = only_message(webhook_examples()["System Message"])
    assert message.type == "system"
    assert message.contact_phone == "+16505551234"
    assert message.contact.name is None
    assert message.content == {
        "system_type": "user_changed_number",
        "body": "User Sheena Nelson changed from 16505551234 to 12195555358",
        "new_wa_id": "12195555358",
    }


@pytest.mark.parametrize("name", ["Group Create Message", "Group Settings Update", "Group Remove Participants"])
def test_group_events_are_other_fields_with_nothing_to_store(name: str) -> None:
    parsed = mw.parse_notification(meta_bytes(webhook_examples()[name]))
    (change,) = parsed.changes
    assert change.field != mw.MESSAGES_FIELD
    assert change.phone_number_id == "106540352242922"  # still routable, so the signature can be checked


def test_every_example_parses_and_normalizes_without_rejections() -> None:
    for name, payload in webhook_examples().items():
        parsed = mw.parse_notification(meta_bytes(payload))
        for change in parsed.changes:
            content = mw.normalize_change(change.value)
            assert not content.rejected, name


# ------------------------------------------------------------------------------------ beyond the examples
@pytest.mark.parametrize(
    ("kind", "body", "content"),
    [
        ("audio", {"id": "m1", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": True}, {"voice": True}),
        ("video", {"id": "m2", "mime_type": "video/mp4", "sha256": "y", "caption": "look"}, None),
        ("document", {"id": "m3", "mime_type": "application/pdf", "filename": "q.pdf", "sha256": "z"}, None),
        ("sticker", {"id": "m4", "mime_type": "image/webp", "sha256": "w", "animated": True}, {"animated": True}),
    ],
)
def test_media_types(kind: str, body: dict[str, Any], content: dict[str, Any] | None) -> None:
    raw = {"from": CONTACT_WA_ID, "id": f"wamid.{kind}", "timestamp": "1", "type": kind, kind: body}
    message = mw.normalize_message(raw)
    assert message.type == kind
    assert message.content == content
    (media,) = message.media
    assert media.provider_media_id == body["id"]
    assert media.content_type == body["mime_type"]
    assert media.sha256 == body["sha256"]
    assert media.filename == body.get("filename")
    assert media.caption == body.get("caption")
    assert media.status == "pending"


def test_media_without_an_id_is_marked_failed_up_front() -> None:
    raw = {"from": CONTACT_WA_ID, "id": "wamid.x", "type": "image", "image": {"mime_type": "image/png"}}
    (media,) = mw.normalize_message(raw).media
    assert (media.status, media.reason) == ("failed", "missing_media_id")


def test_forwarded_flags() -> None:
    raw = text_message("wamid.f", context={"forwarded": True, "frequently_forwarded": True})
    assert mw.normalize_message(raw).context == {"forwarded": True, "frequently_forwarded": True}


def test_reaction_without_emoji_is_a_removal() -> None:
    raw = {"from": CONTACT_WA_ID, "id": "wamid.r", "type": "reaction", "reaction": {"message_id": "wamid.t"}}
    assert mw.normalize_message(raw).content == {"message_id": "wamid.t", "emoji": None, "removed": True}


def test_flow_reply_is_kept() -> None:
    reply = {"name": "flow", "body": "Sent", "response_json": '{"a": 1}'}
    raw = {
        "from": CONTACT_WA_ID,
        "id": "wamid.n",
        "type": "interactive",
        "interactive": {"type": "nfm_reply", "nfm_reply": reply},
    }
    message = mw.normalize_message(raw)
    assert message.content == {"interactive_type": "nfm_reply", "reply": reply}
    assert message.text == "Sent"


@pytest.mark.parametrize("kind", ["request_welcome", "poll", "template"])
def test_types_we_do_not_know_are_stored_as_unsupported(kind: str) -> None:
    message = mw.normalize_message({"from": CONTACT_WA_ID, "id": "wamid.u", "type": kind})
    assert message.type == "unsupported"
    assert message.content == {"meta_type": kind}


def test_contact_names_are_matched_by_wa_id_across_a_batch() -> None:
    value = change_value(
        messages=[text_message("wamid.1", sender="16505550001"), text_message("wamid.2", sender="16505550002")],
        contacts=[
            {"profile": {"name": "Second"}, "wa_id": "16505550002"},
            {"profile": {"name": "First"}, "wa_id": "16505550001"},
        ],
    )
    content = mw.normalize_change(value)
    assert [(m.contact_phone, m.contact.name) for m in content.messages] == [
        ("+16505550001", "First"),
        ("+16505550002", "Second"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "not an object",
        {"id": "wamid.x", "type": "text", "text": {"body": "no sender"}},
        {"from": "not-a-number", "id": "wamid.x", "type": "text"},
        {"from": CONTACT_WA_ID, "type": "text"},
        {"from": CONTACT_WA_ID, "id": "has space", "type": "text"},
        {"from": CONTACT_WA_ID, "id": "x" * 300, "type": "text"},
    ],
)
def test_unusable_messages_are_rejected_not_raised(raw: Any) -> None:
    content = mw.normalize_change(change_value(messages=[raw, text_message("wamid.ok")], contacts=[]))
    assert [m.provider_message_id for m in content.messages] == ["wamid.ok"]
    assert len(content.rejected) == 1


def test_oversized_free_form_parts_are_bounded() -> None:
    cards = [{"name": {"formatted_name": "x" * 1000}} for _ in range(200)]
    message = mw.normalize_message({"from": CONTACT_WA_ID, "id": "wamid.big", "type": "contacts", "contacts": cards})
    assert message.content is not None and message.content["truncated"] is True
    assert len(json.dumps(message.content)) < 1000


def test_batches_keep_every_message_and_status() -> None:
    value = change_value(
        messages=[text_message(f"wamid.{i}") for i in range(3)],
        statuses=[status("wamid.out1", "sent"), status("wamid.out2", "read")],
        errors=[{"code": 131000, "title": "Something went wrong"}],
    )
    content = mw.normalize_change(value)
    assert len(content.messages) == 3
    assert [(s.provider_message_id, s.status) for s in content.statuses] == [
        ("wamid.out1", "sent"),
        ("wamid.out2", "read"),
    ]
    assert content.errors == [
        {"code": "provider_error", "provider_code": "131000", "message": "Something went wrong", "retryable": True}
    ]


# ------------------------------------------------------------------------------------------------ statuses
@pytest.mark.parametrize(
    ("meta", "ours"), [("sent", "sent"), ("delivered", "delivered"), ("read", "read"), ("played", "read")]
)
def test_statuses_map_onto_the_contract(meta: str, ours: str) -> None:
    update = mw.normalize_status(status("wamid.s", meta))
    assert update is not None
    assert (update.status, update.provider_status, update.error) == (ours, meta, None)
    assert update.at == "2025-06-18T16:22:53.000Z"
    assert update.details == {"recipient_id": CONTACT_WA_ID}


def test_failed_status_carries_the_normalized_error_and_keeps_pricing() -> None:
    raw = status(
        "wamid.f",
        "failed",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ],
        pricing={"billable": False, "pricing_model": "PMP", "category": "service"},
        conversation={"id": "c1", "origin": {"type": "service"}},
        biz_opaque_callback_data="order-42",
    )
    update = mw.normalize_status(raw)
    assert update is not None and update.status == "failed"
    assert update.error == {
        "code": "outside_customer_service_window",
        "provider_code": "131047",
        "message": "Re-engagement message: Message failed to send because more than 24 hours have passed.",
        "retryable": False,
    }
    assert update.details is not None
    assert update.details["pricing"]["category"] == "service"
    assert update.details["conversation"]["id"] == "c1"
    assert update.details["biz_opaque_callback_data"] == "order-42"


def test_failed_status_without_errors_still_has_an_error() -> None:
    update = mw.normalize_status(status("wamid.f", "failed"))
    assert update is not None
    assert update.error == {
        "code": "provider_error",
        "provider_code": None,
        "message": "Meta reported the message as failed",
        "retryable": False,
    }


def test_statuses_outside_the_vocabulary_are_ignored_and_reported() -> None:
    content = mw.normalize_change(change_value(statuses=[status("wamid.d", "deleted"), status("wamid.s", "sent")]))
    assert [s.status for s in content.statuses] == ["sent"]
    assert content.ignored_statuses == ["deleted"]


def test_status_without_a_timestamp_uses_now() -> None:
    raw = status("wamid.s", "sent")
    del raw["timestamp"]
    update = mw.normalize_status(raw, now="2030-01-01T00:00:00.000Z")
    assert update is not None and update.at == "2030-01-01T00:00:00.000Z"


def test_odd_error_codes_never_raise() -> None:
    for code in ("9" * 5000, "abc", None, True, 1.5, {"x": 1}):
        assert mw.normalize_error({"code": code})["code"] == "provider_error"


@pytest.mark.parametrize(
    ("code", "normalized", "retryable"),
    [
        (130429, "rate_limited", True),
        (131026, "undeliverable", False),
        (131047, "outside_customer_service_window", False),
        (2, "provider_unavailable", True),
        (999, "provider_error", False),
    ],
)
def test_error_table_is_the_send_paths(code: int, normalized: str, retryable: bool) -> None:
    error = mw.normalize_error({"code": code, "title": "t"})
    assert (error["code"], error["provider_code"], error["retryable"]) == (normalized, str(code), retryable)


# ----------------------------------------------------------------------------------------------- structure
def test_several_entries_and_changes_are_all_kept() -> None:
    payload = notification(change_value("111", messages=[text_message("wamid.a")]))
    payload["entry"].append(copy.deepcopy(payload["entry"][0]))
    payload["entry"][1]["changes"][0]["value"]["metadata"]["phone_number_id"] = "222"
    payload["entry"][1]["changes"].append({"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}})
    parsed = mw.parse_notification(meta_bytes(payload))
    assert [(c.field, c.phone_number_id) for c in parsed.changes] == [
        ("messages", "111"),
        ("messages", "222"),
        ("account_update", None),
    ]
    assert parsed.phone_number_ids == ["111", "222"]


def test_other_objects_carry_nothing_for_us() -> None:
    parsed = mw.parse_notification(b'{"object": "page", "entry": [{"messaging": []}]}')
    assert (parsed.whatsapp, parsed.changes) == (False, [])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"\xff\xfe{}",
        b'{"object": "whatsapp_business_account", "entry": NaN}',
        b'{"entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"object": "whatsapp_business_account", "entry": [1]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": {}}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": []}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {}}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
        b' "value": {"metadata": {"phone_number_id": "12#3"}}}]}]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes) -> None:
    with pytest.raises(BadRequest):
        mw.parse_notification(body)


# ------------------------------------------------------------------------------------------- verification
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"hub.mode": "subscribe", "hub.verify_token": "token-123456", "hub.challenge": "1158201444"},
            ("token-123456", "1158201444"),
        ),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "token-123456", "hub.challenge": "1"}, None),
        ({"hub.verify_token": "token-123456", "hub.challenge": "1"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "token-123456"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "token-123456", "hub.challenge": "<script>x</script>"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "token-123456", "hub.challenge": "a b"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "token-123456", "hub.challenge": "9" * 129}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "short", "hub.challenge": "1"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": "bad#token/xx", "hub.challenge": "1"}, None),
    ],
)
def test_subscription_request(params: dict[str, str], expected: tuple[str, str] | None) -> None:
    assert mw.subscription_request(params) == expected


# ------------------------------------------------------------------------------------------------- fuzzing
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "from",
        "id",
        "type",
        "timestamp",
        "text",
        "image",
        "document",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "errors",
        "context",
        "referral",
        "status",
        "pricing",
        "body",
    ]
)
_items = st.lists(st.dictionaries(_keys, _json | st.just(CONTACT_WA_ID) | st.just("wamid.x"), max_size=8), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    value=st.fixed_dictionaries(
        {},
        optional={
            "messages": _items | _json,
            "statuses": _items | _json,
            "contacts": _json,
            "errors": _json,
            "metadata": _json,
        },
    )
)
def test_any_change_value_normalizes_without_raising_into_storable_items(value: dict[str, Any]) -> None:
    content = mw.normalize_change(value)
    for message in content.messages:
        assert message.type in MESSAGE_TYPES
        json.dumps([message.content, message.context, message.location, [m.to_item() for m in message.media]])
    for update in content.statuses:
        json.dumps([update.error, update.details])


@given(body=st.binary(max_size=256) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_body_parses_or_is_a_bad_request(body: bytes) -> None:
    with contextlib.suppress(BadRequest):
        mw.parse_notification(body)
