"""What WhatsApp added lately, as Meta sends it (tests/fixtures/meta_webhooks.json): usernames and business-scoped
user ids, messages with no phone number, edits, deletions, coexistence echoes, groups, provider timestamps and the
WABA-level fields. Property-based tests check the parsers on any shape of those."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway.domain import ids
from gateway.domain.contact import ContactRef, clean_username, is_bsuid
from gateway.domain.message import Amendment, AmendmentKind, InboundMessage, Origin, effective_created_at
from gateway.providers import meta_webhook as mw
from hypothesis import given
from hypothesis import strategies as st

from tests.meta_support import FIXTURE_BSUID, FIXTURE_WABA_ID, fixture, fixture_names, meta_bytes, sign

PARENT = "US.ENT.11815799212886844830"


def contents(name: str) -> list[mw.ChangeContent]:
    notification = mw.parse_notification(meta_bytes(fixture(name)))
    return mw.normalize(notification, now="2026-01-01T00:00:00.000Z")


def only(name: str) -> mw.ChangeContent:
    (content,) = contents(name)
    assert not content.rejected, content.rejected
    return content


# ------------------------------------------------------------------------------------ usernames and BSUIDs
def test_a_message_with_phone_and_bsuid_names_both() -> None:
    (message,) = only("bsuid_with_phone").messages
    assert message.contact == ContactRef(
        phone="+16505551234", wa_user_id=FIXTURE_BSUID, parent_user_id=PARENT, username="sheena.n", name="Sheena Nelson"
    )


def test_a_message_with_no_phone_at_all_is_kept_with_its_bsuid() -> None:
    (message,) = only("bsuid_only").messages
    assert message.contact == ContactRef(phone=None, wa_user_id=FIXTURE_BSUID, username="sheena.n", name="Sheena")
    assert message.text == "Do you deliver to Oakland?"
    assert message.contact.address == FIXTURE_BSUID


def test_a_bsuid_in_from_is_a_user_id_not_a_phone() -> None:
    (message,) = only("bsuid_in_from").messages
    assert message.contact.phone is None
    assert message.contact.wa_user_id == "BR.1502576394655843"
    assert message.contact.username == "ana.souza"


def test_media_from_a_bsuid_only_contact() -> None:
    (message,) = only("bsuid_image_only").messages
    assert message.type == "image" and message.contact.phone is None and message.media[0].provider_media_id


def test_a_batch_of_two_people_matches_each_to_their_contact_entry() -> None:
    first, second = only("batch_two_people").messages
    assert (first.contact.phone, first.contact.wa_user_id, first.contact.name) == (
        "+16505551234",
        FIXTURE_BSUID,
        "Sheena Nelson",
    )
    assert (second.contact.phone, second.contact.wa_user_id, second.contact.username) == (
        None,
        "GB.88213409126650120077",
        "oliver_k",
    )


def test_a_status_for_a_bsuid_send_keeps_the_recipient_ids() -> None:
    (update,) = only("status_bsuid_recipient").statuses
    assert update.status == "delivered"
    assert update.details is not None
    assert update.details["recipient_user_id"] == FIXTURE_BSUID
    assert update.details["recipient_parent_user_id"] == PARENT


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"id": "wamid.a", "type": "text", "text": {"body": "x"}}, "has no sender"),
        ({"id": "wamid.a", "from": "not a number", "type": "text"}, "neither a phone number"),
        ({"id": "wamid.a", "from_user_id": "13491208655302741918", "type": "text"}, "user id is malformed"),
        ({"id": "wamid.a", "from_user_id": "US.134912 08655", "type": "text"}, "user id is malformed"),
    ],
)
def test_a_message_without_a_usable_sender_is_rejected_alone(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(mw.ItemRejected, match=reason):
        mw.normalize_message(raw)


# ------------------------------------------------------------------------------------ edits and deletions
def test_an_edit_names_the_original_and_the_new_text() -> None:
    content = only("edit_text")
    assert content.messages == []
    (edit,) = content.amendments
    assert edit == Amendment(
        provider="meta",
        provider_message_id="wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQjEyRDQ0QzZFMDY4MkU3RjEyMQA=",
        original_provider_message_id="wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDAxRTk1QzJGQjNFMUI5NAA=",
        kind=AmendmentKind.EDIT,
        contact=ContactRef(phone="+16505551234", wa_user_id=FIXTURE_BSUID, name="Sheena Nelson"),
        text="Hi, is the shop open tomorrow?",
        provider_timestamp="2026-01-01T00:06:40.000Z",
    )


def test_an_edited_caption_is_the_new_text() -> None:
    (edit,) = only("edit_caption").amendments
    assert (edit.kind, edit.text) == (AmendmentKind.EDIT, "the blue one, not this")


def test_a_revoke_names_the_original() -> None:
    (revoke,) = only("revoke").amendments
    assert revoke.kind is AmendmentKind.REVOKE
    assert revoke.original_provider_message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDAxRTk1QzJGQjNFMUI5NAA="
    assert revoke.text is None


def test_an_edit_without_an_original_id_is_rejected_alone() -> None:
    payload = fixture("edit_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["edit"].pop("original_message_id")
    (content,) = mw.normalize(mw.parse_notification(meta_bytes(payload)))
    assert content.amendments == [] and len(content.rejected) == 1


# ------------------------------------------------------------------------------------ coexistence echoes
def test_an_echo_is_the_business_writing_to_the_contact() -> None:
    content = only("echo_text")
    assert content.webhook_field == "smb_message_echoes"
    (echo,) = content.messages
    assert echo.origin is Origin.BUSINESS_APP
    assert echo.contact == ContactRef(
        phone="+16505551234", wa_user_id=FIXTURE_BSUID, parent_user_id=PARENT, name="Sheena Nelson"
    )
    assert echo.text == "Yes, we're open until 6pm."


def test_an_echo_to_a_new_customer_needs_no_contacts_array() -> None:
    (echo,) = only("echo_image_new_customer").messages
    assert echo.contact == ContactRef(phone="+447700900123")
    assert echo.type == "image" and echo.text == "Your order is ready"


@pytest.mark.parametrize(("name", "kind"), [("echo_edit", AmendmentKind.EDIT), ("echo_revoke", AmendmentKind.REVOKE)])
def test_the_business_editing_or_deleting_from_the_app(name: str, kind: AmendmentKind) -> None:
    (amendment,) = only(name).amendments
    assert (amendment.kind, amendment.origin) == (kind, Origin.BUSINESS_APP)
    assert amendment.original_provider_message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIzRjY4QTBGRTc4MjlEMzY0QjMA"


def test_echoes_need_the_business_number_like_messages() -> None:
    payload = fixture("echo_text")
    del payload["entry"][0]["changes"][0]["value"]["metadata"]
    with pytest.raises(mw.BadRequest):
        mw.parse_notification(meta_bytes(payload))


# ------------------------------------------------------------------------------------ groups and timestamps
def test_a_group_message_carries_its_group() -> None:
    (message,) = only("group_text").messages
    assert message.group_id == "120363025246125888"
    assert message.contact.phone == "+16505551234"


def test_provider_timestamps_are_kept() -> None:
    (message,) = only("bsuid_with_phone").messages
    assert message.provider_timestamp == "2026-01-01T00:00:00.000Z"


def test_a_timestamp_far_in_the_future_is_parsed_but_not_believed() -> None:
    (message,) = only("far_future_timestamp").messages
    assert message.provider_timestamp == "2100-01-01T00:00:00.000Z"
    arrival = "2026-01-01T00:00:00.000Z"
    assert effective_created_at(message.provider_timestamp, arrival) == arrival


def test_created_at_is_the_provider_time_when_sane() -> None:
    arrival = "2026-01-01T12:00:00.000Z"
    assert effective_created_at("2026-01-01T08:00:00.000Z", arrival) == "2026-01-01T08:00:00.000Z"  # a late retry
    assert effective_created_at("2026-01-01T12:04:59.000Z", arrival) == "2026-01-01T12:04:59.000Z"  # clock skew
    assert effective_created_at("2026-01-01T12:05:01.000Z", arrival) == arrival
    assert effective_created_at(None, arrival) == arrival


# ------------------------------------------------------------------------------------ WABA-level fields
def test_waba_level_changes_name_no_phone_number_only_their_waba() -> None:
    for name in ("template_approved", "template_quality", "account_update_restriction", "number_quality_flagged"):
        notification = mw.parse_notification(meta_bytes(fixture(name)))
        assert notification.phone_number_ids == []
        assert notification.waba_ids == [FIXTURE_WABA_ID]


def test_template_status_quality_category_and_components() -> None:
    (approved,) = only("template_approved").notices
    assert approved.field == "message_template_status_update"
    assert approved.account_id == FIXTURE_WABA_ID
    assert approved.data == {
        "template_id": "806312974732579",
        "name": "order_ready",
        "language": "en_US",
        "status": "APPROVED",
        "reason": "NONE",
        "category": "UTILITY",
    }
    (rejected,) = only("template_rejected").notices
    assert (rejected.data["status"], rejected.data["reason"]) == ("REJECTED", "INCORRECT_CATEGORY")
    assert rejected.data["info"]["title"] == "Template rejected"
    (quality,) = only("template_quality").notices
    assert (quality.data["quality"], quality.data["previous_quality"]) == ("YELLOW", "GREEN")
    (category,) = only("template_category").notices
    assert (category.data["category"], category.data["previous_category"]) == ("MARKETING", "UTILITY")
    (components,) = only("template_components").notices
    assert components.data["body"] == "Your order {{1}} is ready for pickup."


def test_marketing_preferences_name_the_contact() -> None:
    (stop,) = only("user_preferences_stop").notices
    assert stop.contact == ContactRef(phone="+16505551234", wa_user_id=FIXTURE_BSUID, name="Sheena Nelson")
    assert stop.data["marketing_opted_out"] is True
    assert stop.phone_number_id == "106540352242922"
    (resume,) = only("user_preferences_resume_bsuid").notices
    assert resume.contact == ContactRef(wa_user_id="GB.88213409126650120077")
    assert resume.data["marketing_opted_out"] is False


def test_number_health_and_account_events() -> None:
    (flagged,) = only("number_quality_flagged").notices
    assert flagged.data == {"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_1K"}
    (account,) = only("account_update_restriction").notices
    assert account.data == {"event": "ACCOUNT_RESTRICTION"}
    (security,) = only("security_pin_changed").notices
    assert security.data == {"event": "PIN_CHANGED"}


@pytest.mark.parametrize("name", ["history_sync", "smb_app_state_sync"])
def test_fields_the_gateway_does_not_act_on_parse_to_nothing(name: str) -> None:
    content = only(name)
    assert content.items == 0 and content.webhook_field not in mw.HANDLED_FIELDS


def test_every_fixture_is_signed_parsed_and_normalized_without_rejects() -> None:
    for name in fixture_names():
        body = meta_bytes(fixture(name))
        assert mw.signature_valid(body, mw.parse_signature(sign(body, "s3cr3t-app")), "s3cr3t-app")
        for content in mw.normalize(mw.parse_notification(body)):
            assert not content.rejected, (name, content.rejected)


def test_two_entries_in_one_notification_are_both_normalized() -> None:
    echo, message = contents("two_entries_echo_and_message")
    assert echo.messages[0].origin is Origin.BUSINESS_APP
    assert message.messages[0].contact.phone is None


# ------------------------------------------------------------------------------------ properties
bsuids = st.builds(
    lambda country, ent, tail: f"{country}.{'ENT.' if ent else ''}{tail}",
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.booleans(),
    st.text("0123456789abcdefXYZ", min_size=1, max_size=40),
)
wa_ids = st.integers(min_value=1_000_000, max_value=999_999_999_999_999).map(str)
usernames = st.text(min_size=0, max_size=40)
texts = st.text(max_size=300)


@given(phone=st.none() | wa_ids, user_id=st.none() | bsuids, username=usernames, body=texts,
       timestamp=st.integers(min_value=-10, max_value=10**13), in_contacts=st.booleans())
def test_any_sender_identity_normalizes_to_a_usable_contact_or_is_rejected(
    phone: str | None, user_id: str | None, username: str, body: str, timestamp: int, in_contacts: bool
) -> None:
    raw: dict[str, Any] = {"id": "wamid.p", "type": "text", "text": {"body": body}, "timestamp": str(timestamp)}
    if phone is not None:
        raw["from"] = phone
    if user_id is not None:
        raw["from_user_id"] = user_id
    contact: dict[str, Any] = {"profile": {"name": "N", "username": username}}
    if phone is not None:
        contact["wa_id"] = phone
    if user_id is not None:
        contact["user_id"] = user_id
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [contact] if in_contacts else [],
        "messages": [raw],
    }
    body_bytes = json.dumps({"object": "whatsapp_business_account",
                             "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}).encode()
    (content,) = mw.normalize(mw.parse_notification(body_bytes))
    if phone is None and user_id is None:
        assert len(content.rejected) == 1 and not content.messages
        return
    (message,) = content.messages
    assert isinstance(message, InboundMessage)
    assert message.contact.phone == (f"+{phone}" if phone else None)
    assert message.contact.wa_user_id == user_id
    assert message.contact.username == (clean_username(username) if in_contacts else None)
    if message.contact.username is not None:
        assert not message.contact.username.startswith("@") and message.contact.username.strip()
    assert message.contact.wa_user_id is None or is_bsuid(message.contact.wa_user_id)
    if 0 < timestamp <= ids.MAX_EPOCH:
        assert message.provider_timestamp == ids.iso(datetime.fromtimestamp(timestamp, UTC))
    else:
        assert message.provider_timestamp is None


@given(st.integers(min_value=0, max_value=ids.MAX_EPOCH))
def test_iso_from_epoch_is_iso_of_the_same_instant(seconds: int) -> None:
    assert ids.iso_from_epoch(seconds) == ids.iso(datetime.fromtimestamp(seconds, UTC))


@given(kind=st.sampled_from(["edit", "revoke"]), original=st.text(max_size=300), caption=texts,
       inner=st.sampled_from(["text", "image", "video", "document", "sticker", "unknown"]))
def test_any_amendment_is_an_amendment_or_a_rejected_item(kind: str, original: str, caption: str, inner: str) -> None:
    body: dict[str, Any] = {"original_message_id": original}
    if kind == "edit":
        body["message"] = {"type": inner, inner: {"body": caption} if inner == "text" else {"caption": caption}}
    raw = {"from": "16505551234", "id": "wamid.e", "type": kind, kind: body}
    try:
        amendment = mw.normalize_message(raw)
    except mw.ItemRejected:
        assert not original or len(original) > 256 or any(c.isspace() for c in original)
        return
    assert isinstance(amendment, Amendment)
    assert amendment.original_provider_message_id == original
    if kind == "edit" and caption.strip() and inner != "unknown":
        assert amendment.text == caption
    if kind == "revoke":
        assert amendment.text is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                                       max_size=4), max_leaves=30),
       st.sampled_from([*sorted(mw.HANDLED_FIELDS), "history", "calls"]))
def test_any_value_of_any_field_normalizes_without_crashing(value: Any, field: str) -> None:
    """An authentic notification of an odd shape is answered 200 with its items skipped, never a 500."""
    if not isinstance(value, dict):
        value = {"messages": value, "message_echoes": value, "user_preferences": value, "statuses": value}
    content = mw.normalize_change(value, field=field)
    assert content.webhook_field == field
