"""Twilio inbound and status parameters → provider-neutral messages and statuses (PROTOCOLS §1, §4)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from gateway.config import Settings
from gateway.domain.errors import BadRequest, PayloadTooLarge
from gateway.http.webhook import WebhookRequest, public_url
from gateway.providers.twilio_webhook import (
    MAX_BODY_BYTES,
    FormParams,
    media_type,
    parse_form,
    parse_inbound,
    parse_status,
)
from hypothesis import given
from hypothesis import strategies as st

SID = "SM" + "a" * 32
BASE = {
    "MessageSid": SID,
    "SmsMessageSid": SID,
    "SmsSid": SID,
    "AccountSid": "AC" + "b" * 32,
    "From": "whatsapp:+14155550100",
    "To": "whatsapp:+14155238886",
    "NumSegments": "1",
    "SmsStatus": "received",
    "ApiVersion": "2010-04-01",
    "ProfileName": "Zoë Ñandú 🌵",
    "WaId": "14155550100",
}


def parsed(**params: str) -> object:
    return parse_inbound(parse_form(urlencode({**BASE, **params}).encode()))


def test_text_message() -> None:
    message = parsed(Body="Hello, what's the price?", NumMedia="0")

    assert message.type == "text"
    assert message.text == "Hello, what's the price?"
    assert message.provider == "twilio"
    assert message.provider_message_id == SID
    assert message.contact_phone == "+14155550100"
    assert message.contact.name == "Zoë Ñandú 🌵"
    assert message.contact.wa_user_id is None
    assert message.media == []
    assert message.context is None


def test_media_only_with_blank_body_and_two_media() -> None:
    message = parsed(
        Body="",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType1="application/pdf",
    )

    assert message.type == "image"  # the first media's family
    assert message.text is None
    assert [(m.content_type, m.status) for m in message.media] == [
        ("image/jpeg", "pending"),
        ("application/pdf", "pending"),
    ]
    assert message.media[1].provider_url.endswith("/ME1")


def test_media_order_follows_the_index_not_the_form_order() -> None:
    form = urlencode(
        [*BASE.items(), ("MediaUrl10", "https://x/10"), ("MediaContentType10", "video/mp4"),
         ("MediaUrl2", "https://x/2"), ("MediaContentType2", "audio/ogg"), ("NumMedia", "2")]
    )
    message = parse_inbound(parse_form(form.encode()))

    assert [m.provider_url for m in message.media] == ["https://x/2", "https://x/10"]
    assert message.type == "audio"


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("image/webp", "image"), ("audio/ogg; codecs=opus", "audio"), ("video/mp4", "video"),
     ("application/pdf", "document"), ("text/vcard", "document"), (None, "document"), ("IMAGE/PNG", "image")],
)
def test_media_type_by_family(content_type: str | None, kind: str) -> None:
    assert media_type(content_type) == kind


def test_location() -> None:
    message = parsed(Body="", Latitude="-33.8688", Longitude="151.2093", Address="Sydney NSW", Label="Office",
                     MessageType="location")

    assert message.type == "location"
    assert message.location == {"latitude": -33.8688, "longitude": 151.2093, "address": "Sydney NSW", "name": "Office"}


@pytest.mark.parametrize(("lat", "lon"), [("north", "1"), ("91", "0"), ("0", "-180.5"), ("nan", "0")])
def test_bad_coordinates_are_a_400(lat: str, lon: str) -> None:
    with pytest.raises(BadRequest):
        parsed(Latitude=lat, Longitude=lon)


def test_quick_reply_button() -> None:
    message = parsed(Body="Yes please", ButtonText="Yes please", ButtonPayload="confirm_order_42", MessageType="button")

    assert message.type == "button"
    assert message.text == "Yes please"
    assert message.content["button"] == {"text": "Yes please", "payload": "confirm_order_42"}


def test_button_with_payload_only_still_is_a_button() -> None:
    message = parsed(Body="", ButtonPayload="p1")

    assert message.type == "button"
    assert message.content["button"] == {"text": None, "payload": "p1"}


def test_quoted_reply_context() -> None:
    replied = "SM" + "c" * 32
    message = parsed(Body="that one", OriginalRepliedMessageSid=replied,
                     OriginalRepliedMessageSender="whatsapp:+14155238886")

    assert message.type == "text"
    assert message.context == {"reply_to": {"provider_message_id": replied, "from": "+14155238886"}}


def test_click_to_whatsapp_referral() -> None:
    message = parsed(
        Body="Hi, I saw your ad",
        ReferralBody="Summer sale",
        ReferralHeadline="50% off",
        ReferralSourceId="120200",
        ReferralSourceType="ad",
        ReferralSourceUrl="https://fb.me/abc",
        ReferralMediaId="",  # blank: left out, not stored as ""
        ReferralNumMedia="0",
        ReferralCtwaClid="ARAkLkA8",
    )

    assert message.context == {
        "referral": {
            "body": "Summer sale",
            "headline": "50% off",
            "source_id": "120200",
            "source_type": "ad",
            "source_url": "https://fb.me/abc",
            "num_media": "0",
            "ctwa_clid": "ARAkLkA8",
        }
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"Forwarded": "true"}, {"forwarded": True}),
     ({"Forwarded": "true", "FrequentlyForwarded": "true"}, {"forwarded": True, "frequently_forwarded": True}),
     ({"Forwarded": "false", "FrequentlyForwarded": ""}, None)],
)
def test_forwarded_flags(flags: dict[str, str], expected: dict[str, bool] | None) -> None:
    assert parsed(Body="fwd", **flags).context == expected


def test_profile_name_and_wa_id_absent() -> None:
    params = {k: v for k, v in BASE.items() if k not in {"ProfileName", "WaId"}}
    message = parse_inbound(FormParams({**params, "Body": "hi"}.items()))

    assert message.contact.name is None
    assert message.contact.wa_user_id is None


def test_from_falls_back_to_wa_id() -> None:
    message = parsed(From="", WaId="447700900123", Body="hi")

    assert message.contact_phone == "+447700900123"


def test_type_only_hint_and_unknown_parameters() -> None:
    message = parsed(Body="", MessageType="interactive", SomeFutureParameter="x", ChannelMetadata='{"type":"whatsapp"}')

    assert message.type == "interactive"
    assert message.content == {"message_type": "interactive", "channel_metadata": {"type": "whatsapp"}}


def test_nothing_we_know_is_unsupported() -> None:
    assert parsed(Body="").type == "unsupported"


@pytest.mark.parametrize(
    ("override", "field"),
    [({"MessageSid": "", "SmsMessageSid": "", "SmsSid": ""}, "MessageSid"),
     ({"MessageSid": "SM<script>"}, "MessageSid"),
     ({"From": "whatsapp:0123", "WaId": ""}, "From"),
     ({"From": "", "WaId": "not-digits"}, "From")],
)
def test_what_cannot_be_a_message_is_a_400_naming_the_field(override: dict[str, str], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parsed(Body="x", **override)
    assert caught.value.field == field


# ---------------------------------------------------------------------------------------------- the form
def test_form_keeps_blank_values_and_decodes_unicode() -> None:
    params = parse_form(b"Body=&ProfileName=Zo%C3%AB+%F0%9F%8C%B5&NumMedia=0")

    assert params == {"Body": "", "ProfileName": "Zoë 🌵", "NumMedia": "0"}
    assert params.value("Body") is None


def test_repeated_name_keeps_first_value_and_every_value_for_the_signature() -> None:
    params = parse_form(b"A=1&A=2&B=3")

    assert params["A"] == "1"
    assert params.getall("A") == ["1", "2"]
    assert params.getall("B") == ["3"]
    assert "1" not in repr(params)


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe=x", b"Body=%FF", b"just text without fields", b'{"MessageSid": "SM1"}'],
)
def test_unparsable_bodies(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_form(body)


def test_oversized_body() -> None:
    with pytest.raises(BadRequest):
        parse_form(b"Body=" + b"x" * MAX_BODY_BYTES)


def test_event_base64_body_is_decoded() -> None:
    raw = urlencode({"Body": "olá"}).encode()
    event = {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True, "rawPath": "/webhooks/twilio",
             "rawQueryString": "", "headers": {"X-Twilio-Signature": "abc"}, "requestContext": {"apiId": "a1"}}
    request = WebhookRequest.from_event(event, max_body_bytes=1024)

    assert request.body == raw
    assert request.header("x-twilio-signature") == "abc"


@pytest.mark.parametrize(
    ("event", "error"),
    [({"body": "not base64!!", "isBase64Encoded": True}, BadRequest),
     ({"body": "A" * 5000, "isBase64Encoded": True}, PayloadTooLarge),
     ({"body": "x" * 2000, "isBase64Encoded": False}, PayloadTooLarge)],
)
def test_event_body_errors(event: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        WebhookRequest.from_event(event, max_body_bytes=1024)


def test_public_url_from_setting_or_api_id_never_host() -> None:
    event = {"rawPath": "/webhooks/twilio", "rawQueryString": "a=1", "headers": {"host": "evil.example"},
             "requestContext": {"apiId": "abc123"}}
    request = WebhookRequest.from_event(event, max_body_bytes=10)

    assert public_url(Settings(public_base_url="https://hooks.example.com/"), request, "/webhooks/twilio") == (
        "https://hooks.example.com/webhooks/twilio?a=1"
    )
    assert public_url(Settings(region="eu-west-1"), request, "/webhooks/twilio") == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio?a=1"
    )


# ---------------------------------------------------------------------------------------------- statuses
def status_params(**params: str) -> FormParams:
    base = {"MessageSid": SID, "AccountSid": BASE["AccountSid"], "From": BASE["To"], "To": BASE["From"],
            "ChannelPrefix": "whatsapp"}
    return FormParams({**base, **params}.items())


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("queued", "queued"), ("sending", "queued"), ("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
     ("undelivered", "failed"), ("failed", "failed"), ("canceled", "failed")],
)
def test_status_vocabulary(raw: str, normalized: str) -> None:
    update = parse_status(status_params(MessageStatus=raw), "2025-01-01T00:00:00.000Z")

    assert update is not None
    assert update.status == normalized
    assert update.provider_status == raw
    assert update.provider_message_id == SID


def test_failed_status_carries_the_normalized_error() -> None:
    update = parse_status(
        status_params(MessageStatus="failed", ErrorCode="63016", ErrorMessage="Outside the allowed window"), "t"
    )

    assert update.error == {
        "code": "outside_customer_service_window",
        "provider_code": "63016",
        "message": "Outside the allowed window",
        "retryable": False,
    }


def test_unknown_error_code_is_a_generic_provider_error() -> None:
    update = parse_status(status_params(MessageStatus="undelivered", ErrorCode="99999"), "t")

    assert update.error["code"] == "provider_error"
    assert update.error["provider_code"] == "99999"
    assert update.error["message"]


def test_delivered_has_no_error_even_with_an_error_code() -> None:
    update = parse_status(status_params(MessageStatus="delivered", ErrorCode="0", EventType="DELIVERED"), "t")

    assert update.error is None
    assert update.details == {"event_type": "DELIVERED", "channel": "whatsapp"}


def test_statuses_outside_the_vocabulary_are_ignored() -> None:
    assert parse_status(status_params(MessageStatus="receiving"), "t") is None
    assert parse_status(status_params(MessageStatus="something-new"), "t") is None


def test_status_without_status_is_a_400() -> None:
    with pytest.raises(BadRequest):
        parse_status(status_params(), "t")


# ------------------------------------------------------------------------------------ usernames and BSUIDs
# Twilio's own changelog (2026-07-20, "WhatsApp BSUID Format in Conversations and Webhook Fields") confirms that
# WhatsApp addresses may be ``whatsapp:<BSUID>`` and names the Programmable Messaging field
# ``ExternalUserIdentifier``; peers' tests use ``ExternalUserId`` and ``ProfileUsername``. Both spellings are read.
BSUID = "US.13491208655302741918"


def test_a_user_without_a_phone_arrives_with_a_bsuid_in_from() -> None:
    params = {k: v for k, v in BASE.items() if k != "WaId"}
    message = parse_inbound(
        parse_form(
            urlencode(
                {**params, "From": f"whatsapp:{BSUID}", "ExternalUserId": BSUID, "ProfileUsername": "@zoe.n",
                 "Body": "hi"}
            ).encode()
        )
    )
    assert message.contact_phone is None
    assert message.contact.wa_user_id == BSUID
    assert message.contact.username == "zoe.n"
    assert message.contact.name == "Zoë Ñandú 🌵"


@pytest.mark.parametrize("field", ["ExternalUserId", "ExternalUserIdentifier"])
def test_phone_and_bsuid_together(field: str) -> None:
    message = parsed(Body="hi", **{field: BSUID, "ProfileUsername": "zoe.n"})
    assert (message.contact.phone, message.contact.wa_user_id, message.contact.username) == (
        "+14155550100",
        BSUID,
        "zoe.n",
    )


def test_a_malformed_external_user_id_is_ignored_not_stored() -> None:
    message = parsed(Body="hi", ExternalUserId="not a bsuid")
    assert message.contact.wa_user_id is None and message.contact.phone == "+14155550100"


def test_neither_phone_nor_bsuid_is_a_400_naming_from() -> None:
    params = {k: v for k, v in BASE.items() if k != "WaId"}
    with pytest.raises(BadRequest) as caught:
        parse_inbound(parse_form(urlencode({**params, "From": "whatsapp:somebody", "Body": "hi"}).encode()))
    assert caught.value.field == "From"


@given(
    phone=st.none() | st.integers(min_value=1_000_000, max_value=999_999_999_999_999).map(str),
    user_id=st.none() | st.from_regex(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,40}", fullmatch=True),
    in_from=st.booleans(),
    username=st.text(max_size=30),
)
def test_any_identity_combination_is_a_contact_or_a_400(
    phone: str | None, user_id: str | None, in_from: bool, username: str
) -> None:
    params = {k: v for k, v in BASE.items() if k not in {"WaId", "From"}}
    if phone is not None:
        params["From"] = f"whatsapp:+{phone}"
        params["WaId"] = phone
    elif user_id is not None and in_from:
        params["From"] = f"whatsapp:{user_id}"
    if user_id is not None:
        params["ExternalUserId"] = user_id
    params["ProfileUsername"] = username
    try:
        message = parse_inbound(parse_form(urlencode({**params, "Body": "x"}).encode()))
    except BadRequest as error:
        assert phone is None and user_id is None and error.field == "From"
        return
    assert message.contact.phone == (f"+{phone}" if phone else None)
    assert message.contact.wa_user_id == user_id
    assert message.contact.username is None or (
        message.contact.username.strip() and not message.contact.username.startswith("@")
    )
