"""Twilio webhooks: the form body, the ``X-Twilio-Signature`` check, and normalization (PROTOCOLS §1, §2, §4).

Pure functions, no I/O: the service resolves the channel and its auth token, this module says whether the request
is Twilio's and what it means.

- The form is parsed keeping blank values (a media-only message has an empty ``Body`` that Twilio signed) and
  every parameter, known or not: parameters change without notice, so nothing is allow-listed.
- The signature is twilio-python's algorithm (``RequestValidator.compute_signature``) over the channel's public
  URL, tried with and without the port as Twilio's own validator does, compared in constant time
  (``hmac.compare_digest`` on every candidate, no early exit).
- Normalization never trusts ``NumMedia`` alone and never fails on a parameter it does not know.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import ParseResult, parse_qsl, urlparse

from gateway.domain import status as st
from gateway.domain.contact import ContactRef, clean_username, is_bsuid
from gateway.domain.errors import BadRequest
from gateway.domain.message import MESSAGE_TYPES, InboundMessage, MediaRef
from gateway.domain.phone import from_twilio_address, from_wa_id
from gateway.providers import send_errors
from gateway.providers.send_errors import ErrorRule

PROVIDER = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
# Twilio messaging webhooks are a few KB (Body ≤ 1600 characters, ≤ 10 media URLs); anything near this is not Twilio.
MAX_BODY_BYTES = 128 * 1024
MAX_FIELDS = 500
MAX_MEDIA = 20
_MEDIA_URL = re.compile(r"^MediaUrl(\d{1,3})$")
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
_FAMILIES = {"image": "image", "audio": "audio", "video": "video"}
# Types that only ``MessageType`` can tell (no dedicated parameters in the inbound form).
_TYPE_ONLY_HINTS = MESSAGE_TYPES - {"text", "image", "audio", "video", "document", "location", "button", "template"}


class FormParams(dict[str, str]):
    """The form's parameters as a plain dict (first value per name), remembering every value of a repeated name.

    Twilio does not repeat names in messaging webhooks; if one is repeated anyway, normalization uses the first
    value and the signature covers all of them (``getall`` is what ``RequestValidator`` looks for).
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._all: dict[str, list[str]] = {}
        for name, value in pairs:
            self._all.setdefault(name, []).append(value)
            self.setdefault(name, value)

    def getall(self, name: str) -> list[str]:
        return list(self._all.get(name, [self[name]] if name in self else []))

    def value(self, name: str) -> str | None:
        """The value with surrounding whitespace removed, or None when absent or blank."""
        raw = self.get(name)
        if raw is None:
            return None
        stripped = raw.strip()
        return stripped or None

    def __repr__(self) -> str:  # bodies hold personal data: never print values
        return f"FormParams({sorted(self)})"

    __str__ = __repr__


# ------------------------------------------------------------------------------------------------ parsing
def parse_form(body: bytes) -> FormParams:
    """``application/x-www-form-urlencoded`` bytes → parameters. BadRequest when it is not such a body."""
    if not body:
        raise BadRequest("The request body is empty; expected Twilio's form-encoded parameters.")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        raise BadRequest("The request body is not a UTF-8 application/x-www-form-urlencoded form.") from error
    return FormParams(pairs)


# ------------------------------------------------------------------------------------------------ signature
# twilio-python's RequestValidator algorithm, byte for byte (tests sign with RequestValidator itself and check
# that exactly its signatures are accepted). Not imported from twilio: that package and its dependencies would be
# ~60 MB of the layer for these lines.
def _values(params: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(params, "getall", None)
    return list(getall(name)) if callable(getall) else [params[name]]


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """URL, then each parameter name followed by its value(s), names (and values) sorted; HMAC-SHA1; base64."""
    data = url
    for name in sorted(set(params)):
        for value in sorted(set(_values(params, name))):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _without_port(uri: ParseResult) -> str:
    if not uri.port:
        return uri.geturl()
    return uri._replace(netloc=uri.netloc.split(":")[0]).geturl()


def _with_port(uri: ParseResult) -> str:
    if uri.port:
        return uri.geturl()
    return uri._replace(netloc=f"{uri.netloc}:{443 if uri.scheme == 'https' else 80}").geturl()


def expected_signatures(auth_token: str, url: str, params: Mapping[str, str]) -> list[str]:
    """The signatures Twilio may have sent for ``url``: with the port removed and with the default port added
    (Twilio's own validator tries both: which form Twilio signs is not consistent)."""
    parsed = urlparse(url)
    candidates = dict.fromkeys([_without_port(parsed), _with_port(parsed)])
    return [compute_signature(auth_token, candidate, params) for candidate in candidates]


def signature_valid(auth_token: str | None, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Fail closed: no token or no signature is never valid. Every candidate is compared in constant time."""
    if not auth_token or not signature:
        return False
    given = signature.strip().encode("utf-8")
    valid = False
    for expected in expected_signatures(auth_token, url, params):
        valid |= hmac.compare_digest(expected.encode("utf-8"), given)
    return valid


# ------------------------------------------------------------------------------------------------ inbound
def contact_address(params: FormParams, name: str) -> str:
    """The E.164 number of a ``whatsapp:+…`` address parameter; BadRequest naming the parameter otherwise."""
    raw = params.value(name)
    if raw is None:
        raise BadRequest(f"The form has no {name} parameter.", field=name)
    try:
        return from_twilio_address(raw)
    except ValueError as error:
        raise BadRequest(f"{name} is not a WhatsApp address like whatsapp:+14155238886.", field=name) from error


def message_sid(params: FormParams) -> str:
    for name in ("MessageSid", "SmsMessageSid", "SmsSid"):
        raw = params.value(name)
        if raw is not None:
            if not _SID.fullmatch(raw):
                raise BadRequest(f"{name} is not a Twilio message SID.", field=name)
            return raw
    raise BadRequest("The form has no MessageSid parameter.", field="MessageSid")


def _flag(params: FormParams, name: str) -> bool:
    return (params.value(name) or "").lower() in {"true", "1", "yes"}


def _media(params: FormParams) -> list[MediaRef]:
    indexes = sorted({int(m.group(1)) for name in params if (m := _MEDIA_URL.match(name))})
    media = []
    for n in indexes[:MAX_MEDIA]:
        url = params.value(f"MediaUrl{n}")
        if url is None:
            continue
        content_type = params.value(f"MediaContentType{n}")
        media.append(MediaRef(content_type=content_type.lower() if content_type else None, provider_url=url))
    return media


def media_type(content_type: str | None) -> str:
    """WhatsApp's type for a media content type: its family, ``document`` for anything not image/audio/video."""
    family = (content_type or "").split("/", 1)[0].strip().lower()
    return _FAMILIES.get(family, "document")


def _coordinate(params: FormParams, name: str, limit: float) -> float:
    raw = params.value(name) or ""
    try:
        value = float(raw)
    except ValueError as error:
        raise BadRequest(f"{name} is not a number.", field=name) from error
    if not -limit <= value <= limit:
        raise BadRequest(f"{name} is out of range.", field=name)
    return value


def _location(params: FormParams) -> dict[str, Any] | None:
    if params.value("Latitude") is None or params.value("Longitude") is None:
        return None
    location: dict[str, Any] = {
        "latitude": _coordinate(params, "Latitude", 90.0),
        "longitude": _coordinate(params, "Longitude", 180.0),
    }
    for name, key in (("Address", "address"), ("Label", "name")):
        if (value := params.value(name)) is not None:
            location[key] = value
    return location


_REFERRAL = {
    "ReferralBody": "body",
    "ReferralHeadline": "headline",
    "ReferralSourceId": "source_id",
    "ReferralSourceType": "source_type",
    "ReferralSourceUrl": "source_url",
    "ReferralMediaId": "media_id",
    "ReferralMediaContentType": "media_content_type",
    "ReferralMediaUrl": "media_url",
    "ReferralNumMedia": "num_media",
    "ReferralCtwaClid": "ctwa_clid",
}


def _context(params: FormParams) -> dict[str, Any] | None:
    context: dict[str, Any] = {}
    if (replied := params.value("OriginalRepliedMessageSid")) is not None:
        reply: dict[str, Any] = {"provider_message_id": replied}
        if (sender := params.value("OriginalRepliedMessageSender")) is not None:
            reply["from"] = _phone_or_raw(sender)
        context["reply_to"] = reply
    if _flag(params, "Forwarded"):
        context["forwarded"] = True
    if _flag(params, "FrequentlyForwarded"):
        context["frequently_forwarded"] = True
    referral = {key: value for name, key in _REFERRAL.items() if (value := params.value(name)) is not None}
    if referral:
        context["referral"] = referral
    return context or None


def _phone_or_raw(address: str) -> str:
    try:
        return from_twilio_address(address)
    except ValueError:
        return address


def _channel_metadata(params: FormParams) -> Any:
    """Twilio's JSON, parsed; kept as the raw text when it is not JSON that can be stored and answered again
    (not JSON, nested beyond the parser's recursion limit, NaN/Infinity or a number beyond float range)."""
    raw = params.value("ChannelMetadata")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        json.dumps(value, allow_nan=False)  # the inbox API answers it as JSON
    except (ValueError, RecursionError):
        return raw
    return value


def contact_ref(params: FormParams) -> ContactRef:
    """Who wrote: ``From`` is ``whatsapp:+<E.164>`` or, for a user who shares no phone number,
    ``whatsapp:<BSUID>``; ``WaId`` carries the phone's digits, ``ExternalUserId`` the BSUID (Twilio's changelog
    names the field ``ExternalUserIdentifier``: both are read), ``ProfileUsername`` the WhatsApp username.
    BadRequest naming ``From`` when none of them identifies anyone (docs/webhook-fields.md)."""
    raw_from = params.value("From") or ""
    address = raw_from[len("whatsapp:") :] if raw_from.lower().startswith("whatsapp:") else raw_from
    phone = user_id = None
    try:
        phone = from_twilio_address(raw_from) if raw_from else None
    except ValueError:
        if is_bsuid(address.strip()):
            user_id = address.strip()
    if phone is None:
        wa_id = params.value("WaId")
        if wa_id is not None and wa_id.isdigit():
            with contextlib.suppress(ValueError):  # digits, but not a phone number ("0", thirty of them)
                phone = from_wa_id(wa_id)
    for name in ("ExternalUserId", "ExternalUserIdentifier"):
        external = params.value(name)
        if external is not None and is_bsuid(external):
            user_id = external
            break
    if phone is None and user_id is None:
        if raw_from or params.value("WaId"):
            raise BadRequest("Neither From nor WaId is a WhatsApp phone number or user id.", field="From")
        raise BadRequest("The form has no From parameter.", field="From")
    username = clean_username(params.value("ProfileUsername"))
    return ContactRef(phone=phone, wa_user_id=user_id, username=username, name=params.value("ProfileName"))


def parse_inbound(params: FormParams) -> InboundMessage:
    """Every inbound parameter family → the provider-neutral message. BadRequest for what cannot be a message."""
    sid = message_sid(params)
    contact = contact_ref(params)
    text = params.value("Body")
    media = _media(params)
    location = _location(params)
    button_text, button_payload = params.value("ButtonText"), params.value("ButtonPayload")
    hinted = (params.value("MessageType") or "").lower()
    content: dict[str, Any] = {}

    if button_text is not None or button_payload is not None:
        kind = "button"
        content["button"] = {"text": button_text, "payload": button_payload}
        text = text or button_text
    elif media:
        kind = media_type(media[0].content_type)
    elif location is not None:
        kind = "location"
    elif hinted in _TYPE_ONLY_HINTS:
        kind = hinted
    elif text is not None:
        kind = "text"
    else:
        kind = "unsupported"

    if hinted:
        content["message_type"] = hinted
    if (metadata := _channel_metadata(params)) is not None:
        content["channel_metadata"] = metadata
    return InboundMessage(
        provider=PROVIDER,
        provider_message_id=sid,
        contact=contact,
        type=kind,
        text=text,
        media=media,
        location=location,
        context=_context(params),
        content=content or None,
    )


# ------------------------------------------------------------------------------------------------ statuses
# Codes a status callback can carry that a send answer cannot (delivery-time errors); every other code is looked up
# in the send path's table, so a code means the same thing whether the send or the callback reported it.
DELIVERY_ERRORS: dict[int, ErrorRule] = {
    30003: ErrorRule("undeliverable", False, "Unreachable destination handset"),
    30004: ErrorRule("recipient_blocked", False, "Message blocked"),
    30005: ErrorRule("invalid_recipient", False, "Unknown destination handset"),
    30006: ErrorRule("invalid_recipient", False, "Landline or unreachable carrier"),
    30007: ErrorRule("filtered", False, "Message filtered"),
    30008: ErrorRule("provider_error", True, "Unknown error"),
}


def normalized_error(code: str | None, message: str | None) -> dict[str, Any]:
    """The contract's ``{code, provider_code, message, retryable}`` for a Twilio error code."""
    try:
        number = int(code or "")
    except ValueError:
        number = -1
    rule = send_errors.TWILIO.get(number) or DELIVERY_ERRORS.get(number)
    return {
        "code": rule.code if rule else "provider_error",
        "provider_code": code,
        "message": message
        or (rule.meaning if rule and rule.meaning else None)
        or (f"Twilio error {code}" if code else "Twilio reported the message as failed"),
        "retryable": rule.retryable if rule else False,
    }


def parse_status(params: FormParams, at: str) -> st.StatusUpdate | None:
    """A status callback → StatusUpdate, or None for a status outside the contract's vocabulary (ignored)."""
    sid = message_sid(params)
    raw_status = params.value("MessageStatus") or params.value("SmsStatus")
    if raw_status is None:
        raise BadRequest("The form has no MessageStatus parameter.", field="MessageStatus")
    status = st.from_twilio(raw_status)
    if status is None:
        return None
    error_code = params.value("ErrorCode")
    if error_code in {"0", None}:
        error_code = None
    error = normalized_error(error_code, params.value("ErrorMessage")) if status == st.FAILED else None
    details = {
        key: value
        for name, key in (("EventType", "event_type"), ("ChannelPrefix", "channel"))
        if (value := params.value(name)) is not None
    }
    if error_code is not None:
        details["error_code"] = error_code
    return st.StatusUpdate(
        provider=PROVIDER,
        provider_message_id=sid,
        status=status,
        provider_status=raw_status.lower(),
        at=at,
        error=error,
        details=details or None,
    )
