"""Fuzz: Twilio's two webhooks (``webhook_twilio``, ``status_callback``) → only 2xx/4xx, never a 5xx.

Two kinds of cases: anything at all (bodies, encodings, headers, query strings, signatures that cannot be
right), which must be refused with a 4xx before anything is stored; and random forms signed with the channel's
auth token by twilio-python's RequestValidator, so that the channel lookup, the signature check, the
normalizer and the store all run. Message SIDs come mostly from a small pool: a repeated SID is a duplicate
delivery (one transaction that changes nothing), which keeps moto's tables small and the run fast.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.support import (
    CONTACTS,
    TWILIO_ACCOUNT,
    TWILIO_NUMBER,
    TWILIO_TOKEN,
    FuzzStack,
    encoding_mutations,
    fuzz_settings,
    mutate_encoding,
    query_strings,
    random_headers,
    raw_bodies,
    texts,
    twilio_event,
    twilio_inbound_form,
    twilio_signature,
    twilio_status_form,
)

pytestmark = pytest.mark.fuzz

PATHS = {"/webhooks/twilio": "webhook_twilio", "/webhooks/twilio/status": "status_callback"}
MAX_BODY = 128 * 1024  # gateway.providers.twilio_webhook.MAX_BODY_BYTES

# ------------------------------------------------------------------------------------------ form values
SID_POOL = [f"SM{n:032x}" for n in range(1, 25)]
sids = st.one_of(
    st.sampled_from(SID_POOL),
    st.sampled_from(SID_POOL),
    st.sampled_from(["", " ", "SM", "S", "SM" + "0" * 70, "SM-1", "SMé", "MM" + "a" * 32]),
    st.text(st.sampled_from("SMabcdef0123456789"), min_size=2, max_size=40),
)
addresses = st.one_of(
    st.sampled_from([f"whatsapp:{c}" for c in CONTACTS]),
    st.sampled_from(["", "whatsapp:", "whatsapp:+", "+14155550100", "WHATSAPP:+14155550100", "sms:+14155550100",
                     "whatsapp:+0123456789", "whatsapp:+1 (415) 555-0100", "whatsapp:+1234567890123456",
                     "messenger:123", f"whatsapp:{TWILIO_NUMBER}"]),
    st.from_regex(r"whatsapp:\+[1-9][0-9]{6,14}", fullmatch=True),
    texts,
)
numbers = st.one_of(
    st.sampled_from(["0", "-0", "90", "-90", "90.0000001", "180", "-180.5", "nan", "NaN", "inf", "-inf", "1e309",
                     "1_0", "٣", "0x10", " 12.5 ", "", "1e-400"]),
    st.floats().map(repr),
    texts,
)
urls = st.one_of(
    st.sampled_from(["https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1", "http://127.0.0.1/x",
                     "", "not a url", "https://" + "a" * 2000, "javascript:alert(1)"]),
    texts,
)
content_types = st.one_of(
    st.sampled_from(["image/jpeg", "audio/ogg", "video/mp4", "application/pdf", "IMAGE/PNG", "", "/", "text/vcard",
                     "image", "x" * 300]),
    texts,
)
flags = st.sampled_from(["true", "false", "True", "1", "0", "yes", "", "maybe"])

VALUES: dict[str, st.SearchStrategy[str]] = {
    "MessageSid": sids, "SmsMessageSid": sids, "SmsSid": sids, "MessagingServiceSid": sids,
    "AccountSid": st.one_of(st.just(TWILIO_ACCOUNT), st.just(TWILIO_ACCOUNT.lower()), st.just(""), texts),
    "From": addresses, "To": addresses, "OriginalRepliedMessageSender": addresses,
    "WaId": st.one_of(st.sampled_from(["14155550100", "0", "", "+14155550100", "١٤١٥٥٥٥٠١٠٠", "1" * 30]), texts),
    "Body": st.one_of(texts, st.text(max_size=1600), st.just("x" * 20000)),
    "ProfileName": texts, "ButtonText": texts, "ButtonPayload": texts, "Address": texts, "Label": texts,
    "MessageType": st.one_of(st.sampled_from(["text", "image", "location", "interactive", "button", "contacts",
                                              "reaction", "order", "system", "unsupported", "template", "sticker",
                                              "TEXT", "", "__proto__"]), texts),
    "NumMedia": st.one_of(st.sampled_from(["0", "1", "10", "-1", "999999999999", "x"]), texts),
    "Latitude": numbers, "Longitude": numbers,
    "MediaUrl0": urls, "MediaUrl1": urls, "MediaUrl9": urls, "MediaUrl19": urls, "MediaUrl20": urls,
    "MediaUrl999": urls, "MediaUrl0001": urls,
    "MediaContentType0": content_types, "MediaContentType1": content_types, "MediaContentType9": content_types,
    "Forwarded": flags, "FrequentlyForwarded": flags,
    "OriginalRepliedMessageSid": sids,
    "ReferralBody": texts, "ReferralSourceUrl": urls, "ReferralNumMedia": numbers, "ReferralCtwaClid": texts,
    "ReferralMediaUrl": urls, "ReferralSourceType": texts, "ReferralHeadline": texts,
    "ChannelMetadata": st.one_of(
        st.sampled_from(['{"type":"whatsapp","data":{"context":{"ProfileName":"Z"}}}', "{", "[]", "null", "1e999",
                         '{"a":' * 50 + "1" + "}" * 50, '"\\ud800"', "NaN", '{"a":"' + "x" * 5000 + '"}']),
        texts,
    ),
    "MessageStatus": st.one_of(st.sampled_from(["queued", "sending", "sent", "delivered", "read", "failed",
                                                "undelivered", "canceled", "accepted", "scheduled", "receiving",
                                                "partially_delivered", "READ", "", "unknown"]), texts),
    "SmsStatus": st.sampled_from(["received", "sent", "read", "", "x"]),
    "ErrorCode": st.one_of(st.sampled_from(["0", "30003", "63016", "20429", "99999", "-1", "", "1e3", "30008"]),
                           texts),
    "ErrorMessage": texts, "EventType": texts, "ChannelPrefix": texts, "ApiVersion": texts,
}
param_names = st.one_of(st.sampled_from(sorted(VALUES)), texts)


def value_for(name: str) -> st.SearchStrategy[str]:
    return VALUES.get(name, texts)


@st.composite
def signed_forms(draw: st.DrawFn, path: str) -> list[tuple[str, str]]:
    """A realistic form of ``path``'s kind with a few parameters changed, removed, added or repeated."""
    contact = draw(st.sampled_from(CONTACTS))
    sid = draw(st.sampled_from(SID_POOL))
    if path == "/webhooks/twilio":
        base = twilio_inbound_form(sid, contact)
    else:
        base = twilio_status_form(sid, draw(VALUES["MessageStatus"]), contact)
    form = dict(base)
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        form.pop(name, None)
    for name in draw(st.lists(param_names, max_size=6)):
        form[name] = draw(value_for(name))
    pairs = list(form.items())
    for name in draw(st.lists(st.sampled_from(sorted(form) or ["Body"]), max_size=1)):
        pairs.append((name, draw(value_for(name))))  # a repeated name
    return pairs


# ------------------------------------------------------------------------------------------ any request
@fuzz_settings(2000)
@given(
    path=st.sampled_from(sorted(PATHS)),
    body=raw_bodies(huge=MAX_BODY),
    content_type=st.one_of(st.none(), st.sampled_from(["application/x-www-form-urlencoded", "application/json",
                                                       "text/plain", "multipart/form-data"])),
    signature=st.one_of(st.none(), st.just(""), st.text(max_size=40).filter(lambda s: "\r" not in s)),
    query=query_strings,
    headers=random_headers,
    encoding=encoding_mutations,
    data=st.data(),
)
@example(path="/webhooks/twilio", body=None, content_type=None, signature=None, query="", headers=[],
         encoding="invalid-base64", data=None)
@example(path="/webhooks/twilio/status", body=b"x" * (MAX_BODY + 1), content_type=None, signature="sig",
         query="", headers=[], encoding="as-is", data=None)
def test_any_request_is_refused_with_a_4xx(
    stack: FuzzStack, path: str, body: bytes | None, content_type: str | None, signature: str | None, query: str,
    headers: list[tuple[str, str]], encoding: str, data: st.DataObject | None,
) -> None:
    all_headers = [("content-type", content_type)] if content_type is not None else []
    if signature is not None:
        all_headers.append(("x-twilio-signature", signature.encode("latin-1", "replace").decode("latin-1")))
    event = stack.event("POST", path, body=body, query=query, headers=[*all_headers, *headers])
    response = stack.invoke(mutate_encoding(event, encoding, data))
    # Unsigned (or signed with something that cannot be the token's HMAC): never accepted, nothing stored.
    assert 400 <= response["statusCode"] < 500, response


@fuzz_settings(500)
@given(
    form=signed_forms("/webhooks/twilio"),
    how=st.sampled_from(["valid", "valid", "valid", "valid", "without-port", "wrong-token", "missing", "other-url"]),
    query=st.one_of(st.just(""), st.just(""), query_strings),
    headers=random_headers,
    encoding=st.sampled_from(["as-is"] * 8 + ["flag-false", "empty-body"]),
)
@example(form=list(twilio_inbound_form(SID_POOL[0], Latitude="nan", Longitude="1").items()), how="valid", query="",
         headers=[], encoding="as-is")
# Regressions. No From, and a WaId of digits that is no phone number: the normalizer raised ValueError (a 500).
@example(form=[(k, v) for k, v in twilio_inbound_form(SID_POOL[3], WaId="١٤١٥٥٥٥٠١٠٠").items() if k != "From"],
         how="valid", query="", headers=[], encoding="as-is")
# ChannelMetadata nested beyond the JSON parser's recursion limit raised RecursionError (a 500).
@example(form=list(twilio_inbound_form(SID_POOL[1], ChannelMetadata="[" * 30_000).items()),
         how="valid", query="", headers=[], encoding="as-is")
def test_signed_inbound_messages(
    stack: FuzzStack, form: list[tuple[str, str]], how: str, query: str, headers: list[tuple[str, str]],
    encoding: str,
) -> None:
    response = stack.invoke(mutate_encoding(_signed(stack, "/webhooks/twilio", form, how, query, headers), encoding))
    _count_storage(stack, "webhook_twilio", response)


@fuzz_settings(700)
@given(
    form=signed_forms("/webhooks/twilio/status"),
    how=st.sampled_from(["valid", "valid", "valid", "valid", "without-port", "wrong-token", "missing"]),
    query=st.one_of(st.just(""), query_strings),
    headers=random_headers,
)
@example(form=list(twilio_status_form(SID_POOL[2], "failed", ErrorCode="1e3").items()), how="valid", query="",
         headers=[])
def test_signed_status_callbacks(
    stack: FuzzStack, form: list[tuple[str, str]], how: str, query: str, headers: list[tuple[str, str]],
) -> None:
    response = stack.invoke(_signed(stack, "/webhooks/twilio/status", form, how, query, headers))
    _count_storage(stack, "status_callback", response)


def _signed(stack: FuzzStack, path: str, form: list[tuple[str, str]], how: str, query: str,
            headers: list[tuple[str, str]]) -> dict[str, Any]:
    url = stack.twilio_channel["webhook_url" if path == "/webhooks/twilio" else "status_callback_url"]
    if how == "without-port":
        url = url.replace(f":{url.split(':')[2].split('/')[0]}", "", 1)
    elif how == "other-url":
        url = url.replace("/webhooks/", "/hooks/")
    url = f"{url}?{query}" if query else url
    token = "not-the-token" if how == "wrong-token" else TWILIO_TOKEN
    signature = None if how == "missing" else twilio_signature(token, url, form)
    return twilio_event(stack, form, path=path, signature=signature, query=query, headers=headers)


def _count_storage(stack: FuzzStack, name: str, response: dict[str, Any]) -> None:
    if response["statusCode"] == 200:  # verified and normalized: the store ran (stored, duplicate or status)
        stack.tally.storage[name] += 1
    else:
        assert json.loads(response["body"])["error"]["code"]
