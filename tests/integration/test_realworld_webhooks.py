"""What WhatsApp added lately, through the real handlers against moto (tests/fixtures/meta_webhooks.json shapes):
contacts found by phone or BSUID, messages without a phone, edits, deletions, coexistence echoes, groups,
provider timestamps, WABA-level notifications. Read back through the contract's APIs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from local.provision import Resources
from local.testing import ApiEvents
from tests.integration.test_meta_webhook import OTHER_SECRET, Meta, aws_calls
from tests.meta_support import FIXTURE_BSUID, fixture

WABA = "419561257915477"  # what Meta.connect registers
PHONE = "+16505551234"
Invoke = Callable[[str, dict[str, Any]], Any]


@pytest.fixture
def meta(aws: Resources, invoke: Invoke, api_event: ApiEvents, claims: Callable[..., dict[str, Any]]) -> Meta:
    return Meta(invoke, api_event, claims, aws)


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A fixture with the test channel's WABA id and, optionally, a different message timestamp."""
    body = fixture(name)
    for entry in body["entry"]:
        entry["id"] = WABA
        for change in entry["changes"]:
            for key in ("messages", "message_echoes"):
                for message in change["value"].get(key, []):
                    message.update(changes)
    return body


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def only_conversation(meta: Meta) -> dict[str, Any]:
    (conversation,) = meta.conversations()
    return conversation


def messages_of(meta: Meta, conversation_id: str) -> list[dict[str, Any]]:
    return meta.read(f"/v1/conversations/{conversation_id}/messages", limit="100")["items"]


# ------------------------------------------------------------------------------------ usernames and BSUIDs
def test_a_contact_without_a_phone_is_listed_with_its_bsuid(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_only")))

    conversation = only_conversation(meta)
    assert conversation["kind"] == "direct" and conversation["group_id"] is None
    contact = conversation["contact"]
    assert contact["phone"] is None
    assert contact["wa_user_id"] == FIXTURE_BSUID
    assert contact["username"] == "sheena.n"
    assert contact["id"].startswith("ct_")
    (message,) = messages_of(meta, conversation["id"])
    assert message["text"] == "Do you deliver to Oakland?"
    assert message["sender"] == {"kind": "contact", "id": contact["id"]}
    assert message["created_at"] == "2026-01-01T00:01:00.000Z"  # the provider's time
    assert message["received_at"] >= message["created_at"]


def test_a_later_message_with_phone_and_the_same_bsuid_lands_in_the_same_conversation(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_only")))
    first = only_conversation(meta)

    ok(meta.post(payload("bsuid_with_phone")))

    conversation = only_conversation(meta)
    assert conversation["id"] == first["id"]
    assert conversation["contact"]["id"] == first["contact"]["id"]
    assert conversation["contact"]["phone"] == PHONE
    assert conversation["contact"]["wa_user_id"] == FIXTURE_BSUID
    assert len(messages_of(meta, conversation["id"])) == 2
    assert conversation["unread_count"] == 2


def test_phone_first_then_only_the_bsuid_stays_one_contact(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    first = only_conversation(meta)

    ok(meta.post(payload("bsuid_only")))

    conversation = only_conversation(meta)
    assert conversation["id"] == first["id"] and conversation["contact"]["phone"] == PHONE
    assert len(messages_of(meta, conversation["id"])) == 2


def test_a_warm_message_of_a_known_contact_is_one_dynamodb_request(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    second = payload("bsuid_with_phone", id="wamid.second-message-of-a-known-contact")

    with aws_calls() as calls:
        ok(meta.post(second))

    assert calls == [("dynamodb", "TransactWriteItems")]


def test_a_known_contact_seen_from_a_cold_instance_by_bsuid_costs_a_read_not_a_second_contact(
    meta: Meta,
) -> None:
    """Phone first (the contact's id is anchored on the phone); a BSUID-only message on an instance that has never
    seen the contact fails the BSUID claim's condition, reads the claim and files it with the phone's contact."""
    from gateway.store.contacts_repo import ContactRepository

    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    ContactRepository.cache.clear()  # another Lambda instance

    with aws_calls() as calls:
        ok(meta.post(payload("bsuid_only")))

    assert [c for c in calls if c[1] == "TransactWriteItems"] == [("dynamodb", "TransactWriteItems")] * 2
    assert len(meta.conversations()) == 1


def test_a_phone_and_a_bsuid_of_two_existing_contacts_are_never_merged_silently(meta: Meta) -> None:
    """A BSUID-only contact and a phone-only contact exist; a message then names both: it goes to the phone's
    contact, whose record does not take the other contact's BSUID, and the conflict is counted."""
    from gateway.store.contacts_repo import ContactRepository

    meta.connect()
    ok(meta.post(payload("bsuid_only")))
    phone_only = payload("bsuid_with_phone", id="wamid.phone-only")
    message = phone_only["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("from_user_id"), message.pop("from_parent_user_id")
    phone_only["entry"][0]["changes"][0]["value"]["contacts"][0].pop("user_id")
    ok(meta.post(phone_only))
    assert len(meta.conversations()) == 2

    ok(meta.post(payload("bsuid_with_phone")))

    contacts = ContactRepository()
    by_phone, by_bsuid = contacts.find_by_phone("acme", PHONE), contacts.find_by_wa_user_id("acme", FIXTURE_BSUID)
    assert by_phone is not None and by_bsuid is not None and by_phone.contact_id != by_bsuid.contact_id
    assert by_phone.wa_user_id is None  # not taken from the other record
    phone_conversation = next(c for c in meta.conversations() if c["contact"]["phone"] == PHONE)
    assert len(messages_of(meta, phone_conversation["id"])) == 2


# ------------------------------------------------------------------------------------ edits and deletions
def test_an_edit_replaces_the_text_and_sets_edited_at(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    body = ok(meta.post(payload("edit_text")))
    assert body["amendments"] == {"applied": 1}

    (message,) = messages_of(meta, only_conversation(meta)["id"])
    assert message["text"] == "Hi, is the shop open tomorrow?"
    assert message["edited_at"] == "2026-01-01T00:06:40.000Z"
    assert message["deleted_at"] is None


def test_a_deletion_keeps_the_message_listed_without_text_or_media(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    ok(meta.post(payload("revoke")))

    (message,) = messages_of(meta, only_conversation(meta)["id"])
    assert (message["text"], message["media"]) == (None, [])
    assert message["deleted_at"] == "2026-01-01T00:08:40.000Z"
    assert ok(meta.post(payload("edit_text")))["amendments"] == {"stale": 1}  # a deleted message stays deleted


def test_an_edit_that_arrives_before_its_message_is_applied_when_the_message_arrives(meta: Meta) -> None:
    """Parked like a status that beat its send, with the same TTL; the message's arrival removes it (D1, D26)."""
    from gateway.domain import ids
    from gateway.store.messages_repo import PARKED_TTL
    from gateway.store.models import ProviderMessageModel

    original = fixture("bsuid_with_phone")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    key = ProviderMessageModel.key("acme", "meta", original)
    meta.connect()
    before = ids.utcnow()
    assert ok(meta.post(payload("edit_text")))["amendments"] == {"parked": 1}
    assert meta.conversations() == []
    expires_at = ProviderMessageModel.get(*key, consistent_read=True).expires_at
    assert (before + PARKED_TTL).timestamp() - 1 <= expires_at <= (ids.utcnow() + PARKED_TTL).timestamp()

    body = ok(meta.post(payload("bsuid_with_phone")))

    assert body["stored"] == 1
    assert ProviderMessageModel.get(*key, consistent_read=True).expires_at is None  # a claim of a message
    (message,) = messages_of(meta, only_conversation(meta)["id"])
    assert (message["text"], message["edited_at"]) == ("Hi, is the shop open tomorrow?", "2026-01-01T00:06:40.000Z")
    assert ok(meta.post(payload("bsuid_with_phone")))["duplicates"] == 1  # and a redelivery is still one


def test_a_deletion_beats_an_edit_while_parked(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("revoke")))
    assert ok(meta.post(payload("edit_text")))["amendments"] == {"stale": 1}
    ok(meta.post(payload("bsuid_with_phone")))

    (message,) = messages_of(meta, only_conversation(meta)["id"])
    assert message["text"] is None and message["deleted_at"] is not None


# ------------------------------------------------------------------------------------ coexistence echoes
def test_an_echo_is_stored_once_as_sent_by_the_business_app(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    before = only_conversation(meta)

    ok(meta.post(payload("echo_text")))
    assert ok(meta.post(payload("echo_text")))["duplicates"] == 1

    conversation = only_conversation(meta)
    assert conversation["id"] == before["id"]
    assert conversation["unread_count"] == before["unread_count"]  # the business's own words: nothing unread
    assert conversation["last_inbound_at"] == before["last_inbound_at"]  # nor a reopened window
    assert conversation["operator_lock_until"] == "2026-01-01T00:40:00.000Z"  # a person answers: 30 min lock
    assert conversation["last_message_preview"] == "Yes, we're open until 6pm."
    echo = next(m for m in messages_of(meta, conversation["id"]) if m["direction"] == "outbound")
    assert echo["status"] == "sent"
    assert echo["sender"] == {"kind": "business_app", "id": None}


def test_an_echo_to_a_customer_who_never_wrote_creates_contact_and_conversation(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("echo_image_new_customer")))

    conversation = only_conversation(meta)
    assert conversation["contact"]["phone"] == "+447700900123"
    assert conversation["unread_count"] == 0 and conversation["last_inbound_at"] is None
    (echo,) = messages_of(meta, conversation["id"])
    assert (echo["direction"], echo["type"], echo["text"]) == ("outbound", "image", "Your order is ready")


def test_the_business_editing_its_echo(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("echo_text")))
    ok(meta.post(payload("echo_edit")))
    (echo,) = messages_of(meta, only_conversation(meta)["id"])
    assert (echo["text"], echo["edited_at"]) == ("Yes, we're open until 7pm.", "2026-01-01T00:12:00.000Z")


# ------------------------------------------------------------------------------------ groups and timestamps
def test_a_group_message_belongs_to_the_group_never_to_the_senders_one_to_one(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    ok(meta.post(payload("group_text")))

    conversations = {c["kind"]: c for c in meta.conversations()}
    assert set(conversations) == {"direct", "group"}
    group = conversations["group"]
    assert group["group_id"] == "120363025246125888"
    assert group["contact"] == {"id": None, "phone": None, "wa_user_id": None, "username": None, "name": None}
    (message,) = messages_of(meta, group["id"])
    assert message["sender"]["kind"] == "contact" and message["sender"]["name"] == "Sheena Nelson"
    assert len(messages_of(meta, conversations["direct"]["id"])) == 1


def test_a_late_retry_neither_reopens_the_window_nor_reorders(meta: Meta) -> None:
    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))  # 2026-01-01T00:00:00Z
    newer = payload("bsuid_with_phone", id="wamid.newer", timestamp="1767229200")  # 01:00
    ok(meta.post(newer))
    late = payload("bsuid_with_phone", id="wamid.late-retry", timestamp="1767226000")  # 00:06:40, delivered last
    ok(meta.post(late))

    conversation = only_conversation(meta)
    assert conversation["last_inbound_at"] == "2026-01-01T01:00:00.000Z"
    assert conversation["last_message_at"] == "2026-01-01T01:00:00.000Z"
    assert conversation["unread_count"] == 3
    listed = [m["provider_message_id"] for m in messages_of(meta, conversation["id"])]
    assert listed[0] == "wamid.newer" and listed[1] == "wamid.late-retry"  # filed at its own time


# ------------------------------------------------------------------------------------ WABA-level notifications
@pytest.mark.parametrize(
    "name",
    [
        "template_approved",
        "template_rejected",
        "template_quality",
        "template_category",
        "template_components",
        "account_update_restriction",
        "account_review",
        "business_capability",
        "security_pin_changed",
        "number_name_update",
    ],
)
def test_notifications_naming_no_number_are_verified_by_the_waba_and_answered_200(meta: Meta, name: str) -> None:
    meta.connect()
    body = ok(meta.post(payload(name)))
    assert body["notices"] == 1
    assert meta.post(payload(name), secret=OTHER_SECRET)["statusCode"] == 401  # not the channel's secret


def test_a_waba_nobody_connected_is_401_fail_closed(meta: Meta) -> None:
    meta.connect()
    unknown = fixture("template_approved")  # another WABA id
    assert meta.post(unknown)["statusCode"] == 401


def test_another_tenants_secret_never_applies_a_notice_to_this_tenants_channels(meta: Meta) -> None:
    """Two tenants claim the same WABA (one by mistake or malice): a notice signed with one tenant's secret is
    applied to that tenant's channel only."""
    meta.connect()
    meta.connect(tenant="globex", phone_number_id="106540352242923", app_secret=OTHER_SECRET, verify_token=None)
    body = ok(meta.post(payload("number_quality_flagged"), secret=OTHER_SECRET))
    assert body["notices"] == 1  # globex's channel only


def test_number_quality_is_recorded_on_the_channel(meta: Meta) -> None:
    channel = meta.connect()
    body = payload("number_quality_flagged")
    body["entry"][0]["changes"][0]["value"]["display_phone_number"] = "15550783881"
    ok(meta.post(body))
    from gateway.store.models import ChannelModel

    item = ChannelModel.get(*ChannelModel.key("acme", channel["id"]))
    assert item.health == {"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_1K"}


def test_user_preferences_stop_and_resume_marketing(meta: Meta) -> None:
    from gateway.store.contacts_repo import ContactRepository

    meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))
    ok(meta.post(payload("user_preferences_stop")))
    contact = ContactRepository().find_by_phone("acme", PHONE)
    assert contact is not None and contact.marketing_opted_out is True
    assert ContactRepository().find_by_wa_user_id("acme", FIXTURE_BSUID) == contact


def test_a_channel_disabled_while_cached_gets_no_notice(meta: Meta) -> None:
    """A WABA-level write re-checks the route claim of the channel's own number, like every webhook write: the
    instance still has the account's channels cached (their secret verifies), but nothing is recorded."""
    from gateway.store.models import ChannelModel

    channel = meta.connect()
    ok(meta.post(payload("template_approved")))  # the account's channels are cached now
    meta.disable(channel)

    body = ok(meta.post(payload("number_quality_flagged")))

    assert (body["notices"], body["unknown_phone_numbers"]) == (0, 1)
    assert ChannelModel.get(*ChannelModel.key("acme", channel["id"])).health is None
    assert meta.post(payload("number_quality_flagged"))["statusCode"] == 401  # forgotten: no secret of ours left


def test_a_channel_disabled_while_cached_gets_no_edit_or_deletion(meta: Meta) -> None:
    channel = meta.connect()
    ok(meta.post(payload("bsuid_with_phone")))  # the channel is cached now
    conversation = only_conversation(meta)
    meta.disable(channel)
    before = meta.item_counts()

    body = ok(meta.post(payload("edit_text")))
    assert (body["amendments"], body["unknown_phone_numbers"]) == ({}, 1)
    assert meta.post(payload("revoke"))["statusCode"] == 401  # the refusal dropped the cache entry

    (message,) = messages_of(meta, conversation["id"])
    assert (message["text"], message["edited_at"], message["deleted_at"]) == ("Hi, is the shop open today?", None, None)
    assert meta.item_counts() == before


@pytest.mark.parametrize("name", ["history_sync", "smb_app_state_sync"])
def test_other_fields_are_counted_and_answered_200(meta: Meta, name: str) -> None:
    meta.connect()
    body = ok(meta.post(payload(name)))
    assert body["other_fields"] == 1 and body["stored"] == 0


# ------------------------------------------------------------------------------------ Twilio
TWILIO_NUMBER = "+14155238886"
ACCOUNT = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "acme-twilio-auth-token-0123456789"


def twilio_post(invoke: Invoke, api_event: ApiEvents, params: dict[str, str]) -> Any:
    from twilio.request_validator import RequestValidator

    url = "https://gateway.example.test/webhooks/twilio"
    body = urlencode(params).encode()
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    event = api_event(
        "POST",
        "/webhooks/twilio",
        body=body,
        headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
    )
    return invoke("WebhookTwilioFunction", event)


def test_twilio_bsuid_only_then_phone_and_bsuid_is_one_conversation(
    meta: Meta, invoke: Invoke, api_event: ApiEvents, claims: Callable[..., Any]
) -> None:
    body = {"provider": "twilio", "name": "Main", "phone_number": TWILIO_NUMBER, "account_sid": ACCOUNT,
            "auth_token": TWILIO_TOKEN}
    event = api_event("POST", "/v1/channels", json=body, claims=claims("acme", admin=True))
    created = invoke("ChannelsApiFunction", event)
    assert created["statusCode"] == 201, created
    base = {"AccountSid": ACCOUNT, "To": f"whatsapp:{TWILIO_NUMBER}", "ProfileName": "Zoë", "NumMedia": "0"}
    first = twilio_post(invoke, api_event, {**base, "MessageSid": "SM" + "1" * 32, "Body": "hi",
                                            "From": f"whatsapp:{FIXTURE_BSUID}", "ExternalUserId": FIXTURE_BSUID,
                                            "ProfileUsername": "@zoe.n"})
    assert first["statusCode"] == 200, first
    from gateway.store.contacts_repo import ContactRepository

    ContactRepository.cache.clear()  # the second message reaches another (cold) instance: the claims are read
    second = twilio_post(invoke, api_event, {**base, "MessageSid": "SM" + "2" * 32, "Body": "me again",
                                             "From": "whatsapp:+14155550100", "WaId": "14155550100",
                                             "ExternalUserId": FIXTURE_BSUID})
    assert second["statusCode"] == 200, second

    conversation = only_conversation(meta)
    assert conversation["contact"]["phone"] == "+14155550100"
    assert conversation["contact"]["wa_user_id"] == FIXTURE_BSUID
    assert conversation["contact"]["username"] == "zoe.n"
    assert len(messages_of(meta, conversation["id"])) == 2

