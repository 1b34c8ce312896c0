"""Meta WhatsApp Cloud API webhooks: verification GET, ``X-Hub-Signature-256``, payload shape, normalization.

Pure functions, no I/O (PROTOCOLS §7-9): the service resolves channels and their app secrets, this module says
whether bytes were signed with a secret and what the notification means.

- The signature is HMAC-SHA256 over the EXACT raw body bytes, compared in constant time. Nothing is ever
  re-serialised: Meta escapes non-ASCII as ``\\uXXXX`` and a re-encoded body would not match.
- A notification batches any number of entries × changes × messages/statuses/errors: all are handled, never
  ``[0]``. The payload's shape (object, ``entry`` list, ``changes`` list, ``field`` + ``value``) is validated
  up front (``BadRequest``); a single unusable item inside an authentic notification is skipped and reported
  instead, so that one odd item does not make Meta retry a whole batch for 7 days.
- Every message type of the Cloud API maps onto the contract's vocabulary; anything new is stored as
  ``unsupported`` with what Meta called it, never dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.errors import BadRequest
from gateway.domain.message import InboundMessage, MediaRef
from gateway.domain.phone import from_wa_id
from gateway.providers.send_errors import META as META_ERRORS

PROVIDER = "meta"
SIGNATURE_HEADER = "x-hub-signature-256"
WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"
# Meta's notifications are at most 3 MB; a little margin for whatever API Gateway adds, nothing more.
MAX_BODY_BYTES = 3 * 1024 * 1024 + 64 * 1024
# DynamoDB items are ≤ 400 KB: a message's free-form parts (content, context) are bounded well below that.
MAX_ITEM_JSON = 64 * 1024
MAX_TEXT = 16 * 1024
MAX_FIELD = 1024  # a media's mime type, sha256 and filename, a location's name, address and url
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# hub.challenge is an integer in practice; anything beyond a plain token is refused, never reflected.
_CHALLENGE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The alphabet channels accept for verify tokens (services.channels.VerifyToken).
_VERIFY_TOKEN = re.compile(r"[A-Za-z0-9._~\-]{8,128}")
_GRAPH_ID = re.compile(r"[0-9]{1,32}")
_MAX_ID = 256


# ---------------------------------------------------------------------------------------- verification GET
def subscription_request(params: Mapping[str, str]) -> tuple[str, str] | None:
    """``(verify_token, challenge)`` of a well-formed ``hub.mode=subscribe`` request, else None.

    The challenge must be a plain token (Meta sends an integer): markup or anything else is refused, so the
    answer can never reflect attacker-chosen content.
    """
    if params.get("hub.mode") != "subscribe":
        return None
    token, challenge = params.get("hub.verify_token") or "", params.get("hub.challenge") or ""
    if not _VERIFY_TOKEN.fullmatch(token) or not _CHALLENGE.fullmatch(challenge):
        return None
    return token, challenge


# ------------------------------------------------------------------------------------------------ signature
def parse_signature(header: str | None) -> bytes | None:
    """The digest of ``sha256=<64 hex>``, or None when the header is absent or has any other shape."""
    if not header:
        return None
    match = _SIGNATURE.fullmatch(header.strip())
    return bytes.fromhex(match.group(1)) if match else None


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body`` (tests, the local sandbox)."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, digest: bytes | None, app_secret: str | None) -> bool:
    """Constant-time check of ``digest`` against HMAC-SHA256(app_secret, body). Fails closed without a secret."""
    if not app_secret or digest is None:
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, digest)


# ---------------------------------------------------------------------------------------------- structure
@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item."""

    entry_id: str | None
    field: str
    value: dict[str, Any]
    phone_number_id: str | None


@dataclass(frozen=True)
class Notification:
    object: str | None
    changes: list[Change]

    @property
    def whatsapp(self) -> bool:
        return self.object == WHATSAPP_OBJECT

    @property
    def phone_number_ids(self) -> list[str]:
        """Every business phone number the notification speaks for, in order, without repeats."""
        return list(dict.fromkeys(c.phone_number_id for c in self.changes if c.phone_number_id))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """Numbers beyond float range (``1e999``) would be stored as Infinity, which the API cannot answer as JSON."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


# JSON can spell a lone UTF-16 surrogate (``"\ud800"``): a Python string then holds a code point that has no UTF-8
# form, which no store accepts (DynamoDB refuses the request). Meta escapes every non-ASCII character, so
# surrogate escapes are common (emoji are pairs, which json.loads joins); only a lone one is replaced.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(data: Any) -> Any:
    """``data`` with every lone surrogate in its strings (keys included) replaced by U+FFFD. Iterative: the
    payload may be nested as deep as the JSON parser allows."""

    def clean(text: str) -> str:
        return _LONE_SURROGATE.sub("\ufffd", text)

    if isinstance(data, str):
        return clean(data)
    pending = [data] if isinstance(data, dict | list) else []
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = clean(item)
                elif isinstance(item, dict | list):
                    pending.append(item)
            continue
        for key in list(node):
            item = node.pop(key)
            if isinstance(item, str):
                item = clean(item)
            elif isinstance(item, dict | list):
                pending.append(item)
            node[clean(key)] = item
    return data


def parse_notification(body: bytes) -> Notification:
    """The notification's entries and changes. BadRequest when the body is not JSON of Meta's shape.

    Objects other than ``whatsapp_business_account`` (an app subscribed to other products) parse to a
    notification without changes: nothing for this gateway to do.
    """
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest("The request body is not valid UTF-8 JSON.") from error
    if _SURROGATE_ESCAPE.search(text):
        data = without_lone_surrogates(data)
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    kind = data.get("object")
    if not isinstance(kind, str):
        raise BadRequest("The notification has no 'object'.", field="object")
    if kind != WHATSAPP_OBJECT:
        return Notification(kind, [])
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise BadRequest("'entry' must be a list.", field="entry")
    changes: list[Change] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            raise BadRequest(f"entry[{i}] must be an object with a 'changes' list.", field=f"entry[{i}]")
        entry_id = entry.get("id")
        for j, change in enumerate(entry.get("changes") or []):
            where = f"entry[{i}].changes[{j}]"
            if not isinstance(change, dict) or not isinstance(change.get("field"), str):
                raise BadRequest(f"{where} must be an object with a 'field'.", field=where)
            value = change.get("value")
            if not isinstance(value, dict):
                if change["field"] == MESSAGES_FIELD:
                    raise BadRequest(f"{where}.value must be an object.", field=f"{where}.value")
                value = {}
            changes.append(
                Change(
                    entry_id=str(entry_id) if isinstance(entry_id, (str, int)) else None,
                    field=change["field"],
                    value=value,
                    phone_number_id=_phone_number_id(value, where, required=change["field"] == MESSAGES_FIELD),
                )
            )
    return Notification(kind, changes)


def _phone_number_id(value: Mapping[str, Any], where: str, *, required: bool) -> str | None:
    metadata = value.get("metadata")
    raw = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    if raw is None or isinstance(raw, bool):
        if required:
            raise BadRequest(f"{where}.value.metadata.phone_number_id is missing.", field=f"{where}.value.metadata")
        return None
    text = str(raw)
    if not isinstance(raw, (str, int)) or not _GRAPH_ID.fullmatch(text):
        raise BadRequest(f"{where}.value.metadata.phone_number_id must be a numeric id.", field=f"{where}.value")
    return text


# ------------------------------------------------------------------------------------------ normalization
class ItemRejected(ValueError):
    """One message or status inside an authentic notification that cannot be used (reported, skipped)."""


@dataclass
class ChangeContent:
    """What one ``messages`` change carries, normalized."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[st.StatusUpdate] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ignored_statuses: list[str] = field(default_factory=list)  # provider statuses outside our vocabulary
    rejected: list[str] = field(default_factory=list)  # why an item was skipped (no ids, no content)


def normalize_change(value: Mapping[str, Any], *, now: str | None = None) -> ChangeContent:
    """Every message, status and error of one ``value``; unusable items land in ``rejected``."""
    content = ChangeContent()
    names = contact_names(value.get("contacts"))
    for kind, items in (("messages", value.get("messages")), ("statuses", value.get("statuses"))):
        if items is not None and not isinstance(items, list):
            content.rejected.append(f"'{kind}' is not a list")
    for raw in _list(value.get("messages")):
        try:
            content.messages.append(normalize_message(raw, names))
        except ItemRejected as error:
            content.rejected.append(str(error))
    for raw in _list(value.get("statuses")):
        try:
            update = normalize_status(raw, now=now)
        except ItemRejected as error:
            content.rejected.append(str(error))
            continue
        if update is None:
            content.ignored_statuses.append(str(raw.get("status")))
        else:
            content.statuses.append(update)
    content.errors = [normalize_error(e) for e in _list(value.get("errors")) if isinstance(e, dict)]
    return content


def contact_names(contacts: Any) -> dict[str, str]:
    """``wa_id`` → profile name from ``value.contacts`` (messages are matched to their sender by ``wa_id``)."""
    names: dict[str, str] = {}
    for contact in _list(contacts):
        if not isinstance(contact, dict):
            continue
        wa_id, profile = contact.get("wa_id"), contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(wa_id, (str, int)) and isinstance(name, str) and name.strip():
            names[str(wa_id)] = name.strip()[:256]
    return names


def normalize_message(raw: Any, names: Mapping[str, str] | None = None) -> InboundMessage:
    """One ``value.messages[]`` item → InboundMessage. ItemRejected when it has no usable id or sender."""
    if not isinstance(raw, dict):
        raise ItemRejected("a message is not an object")
    message_id = _identifier(raw.get("id"), "message id")
    sender = raw.get("from")
    if isinstance(sender, int) and not isinstance(sender, bool):
        sender = str(sender)
    if not isinstance(sender, str):
        raise ItemRejected(f"message {message_id} has no 'from'")
    try:
        phone = from_wa_id(sender)
    except ValueError as error:
        raise ItemRejected(f"message {message_id}: 'from' is not a phone number") from error
    meta_type = _str(raw.get("type")) or "unsupported"
    message = InboundMessage(
        provider=PROVIDER,
        provider_message_id=message_id,
        contact_phone=phone,
        type=meta_type,
        contact_name=(names or {}).get(sender),
        wa_id=sender,
        provider_timestamp=_timestamp(raw.get("timestamp")),
    )
    _FILL.get(meta_type, _unsupported)(message, raw)
    message.context = _bounded(_context(raw))
    message.content = _bounded(message.content)
    if message.text is not None:
        message.text = message.text[:MAX_TEXT]
    return message


def _text(message: InboundMessage, raw: dict[str, Any]) -> None:
    message.text = _str(_obj(raw, "text").get("body"))


def _media(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, message.type)
    media_id = _str(body.get("id"))
    ref = MediaRef(
        content_type=_short(body.get("mime_type"), MAX_FIELD),
        provider_media_id=media_id if media_id is None or len(media_id) <= _MAX_ID else None,
        sha256=_short(body.get("sha256"), MAX_FIELD),
        caption=_short(body.get("caption"), MAX_TEXT),
        filename=_short(body.get("filename"), MAX_FIELD),
    )
    if ref.provider_media_id is None:  # nothing to download: say so now rather than fail later in the processor
        ref.status, ref.reason = "failed", "missing_media_id" if media_id is None else "invalid_media_id"
    message.media = [ref]
    message.text = ref.caption
    flags = {key: True for key in ("voice", "animated") if body.get(key) is True}
    message.content = flags or None


def _location(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "location")
    location: dict[str, Any] = {}
    for key in ("latitude", "longitude"):
        number = body.get(key)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            location[key] = number
    for key in ("name", "address", "url"):
        if (text := _short(body.get(key), MAX_FIELD)) is not None:
            location[key] = text
    message.location = location or None


def _contacts(message: InboundMessage, raw: dict[str, Any]) -> None:
    shared = [c for c in _list(raw.get("contacts")) if isinstance(c, dict)]
    message.content = {"contacts": shared}
    names = [_str((c.get("name") or {}).get("formatted_name")) for c in shared if isinstance(c.get("name"), dict)]
    message.text = ", ".join(n for n in names if n) or None


def _interactive(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "interactive")
    kind = _str(body.get("type")) or "unknown"
    reply = _obj(body, kind)
    content: dict[str, Any] = {"interactive_type": kind}
    if kind in {"button_reply", "list_reply"}:
        content |= {key: _str(reply.get(key)) for key in ("id", "title", "description") if key in reply}
        message.text = content.get("title")
    else:  # nfm_reply (WhatsApp Flows) and whatever comes next: kept as sent
        content["reply"] = reply
        message.text = _str(reply.get("body"))
    message.content = content


def _button(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "button")
    button = {"text": _str(body.get("text")), "payload": _str(body.get("payload"))}
    message.content = {"button": button}
    message.text = button["text"]


def _reaction(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "reaction")
    emoji = _str(body.get("emoji"))
    message.content = {"message_id": _str(body.get("message_id")), "emoji": emoji, "removed": emoji is None}


def _order(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "order")
    items = []
    for item in _list(body.get("product_items")):
        if isinstance(item, dict):
            keys = ("product_retailer_id", "quantity", "item_price", "currency")
            items.append({key: item.get(key) for key in keys if key in item})
    message.content = {
        "catalog_id": _str(body.get("catalog_id")),
        "text": _str(body.get("text")),
        "product_items": items,
    }
    message.text = _str(body.get("text"))


def _system(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = _obj(raw, "system")
    content: dict[str, Any] = {"system_type": _str(body.get("type")), "body": _str(body.get("body"))}
    new_wa_id = _str(body.get("wa_id")) or _str(body.get("new_wa_id"))
    if new_wa_id is not None:
        content["new_wa_id"] = new_wa_id
    for key in ("identity", "customer"):
        if key in body:
            content[key] = body[key]
    message.content = content
    message.text = content["body"]


def _unsupported(message: InboundMessage, raw: dict[str, Any]) -> None:
    """Meta's own ``unsupported`` (with error 131051) and any type this gateway does not know yet."""
    errors = [normalize_error(e) for e in _list(raw.get("errors")) if isinstance(e, dict)]
    content: dict[str, Any] = {"meta_type": message.type}
    if errors:
        content["provider_code"] = errors[0]["provider_code"]
        content["errors"] = errors
    message.type = "unsupported"
    message.content = content


_FILL: dict[str, Callable[[InboundMessage, dict[str, Any]], None]] = {
    "text": _text,
    **dict.fromkeys(MEDIA_TYPES, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
}

_REFERRAL_KEYS = (
    "source_url",
    "source_id",
    "source_type",
    "body",
    "headline",
    "media_type",
    "image_url",
    "video_url",
    "thumbnail_url",
    "ctwa_clid",
    "welcome_message",
)


def _context(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """Replies, forwards, product inquiries and click-to-WhatsApp ad referrals (same keys as Twilio's)."""
    context: dict[str, Any] = {}
    quoted = _obj(raw, "context")
    if (replied := _str(quoted.get("id"))) is not None:
        reply: dict[str, Any] = {"provider_message_id": replied}
        if (sender := _str(quoted.get("from"))) is not None:
            reply["from"] = _phone_or_raw(sender)
        context["reply_to"] = reply
    for flag in ("forwarded", "frequently_forwarded"):
        if quoted.get(flag) is True:
            context[flag] = True
    product = quoted.get("referred_product")
    if isinstance(product, dict):
        context["referred_product"] = {
            key: _str(product.get(key)) for key in ("catalog_id", "product_retailer_id") if key in product
        }
    referral = raw.get("referral")
    if isinstance(referral, dict):
        context["referral"] = {key: referral[key] for key in _REFERRAL_KEYS if key in referral}
    return context or None


# ------------------------------------------------------------------------------------------------ statuses
def normalize_status(raw: Any, *, now: str | None = None) -> st.StatusUpdate | None:
    """One ``value.statuses[]`` item → StatusUpdate; None for a status outside the contract's vocabulary.

    Errors become the contract's normalized error (the first one; all are kept in details when several);
    ``pricing``, ``conversation``, the recipient and ``biz_opaque_callback_data`` are kept in details.
    """
    if not isinstance(raw, dict):
        raise ItemRejected("a status is not an object")
    message_id = _identifier(raw.get("id"), "status message id")
    provider_status = _str(raw.get("status"))
    if provider_status is None:
        raise ItemRejected(f"status for {message_id} has no 'status'")
    status = st.from_meta(provider_status)
    if status is None:
        return None
    errors = [normalize_error(e) for e in _list(raw.get("errors")) if isinstance(e, dict)]
    details: dict[str, Any] = {
        key: raw[key]
        for key in ("recipient_id", "recipient_type", "conversation", "pricing", "biz_opaque_callback_data")
        if key in raw
    }
    error = None
    if status == st.FAILED:
        error = errors[0] if errors else normalize_error({})
    if len(errors) > 1 or (errors and status != st.FAILED):
        details["errors"] = errors
    return st.StatusUpdate(
        provider=PROVIDER,
        provider_message_id=message_id,
        status=status,
        provider_status=provider_status.lower(),
        at=_timestamp(raw.get("timestamp")) or now or ids.iso(ids.utcnow()),
        error=error,
        details=_bounded(details) or None,
    )


def normalize_error(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{code, title, message, error_data.details}`` → ``{code, provider_code, message, retryable}``, with the
    same table as send errors (``providers.send_errors.META``): a code means the same thing on both paths."""
    code = raw.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    if isinstance(code, str) and code.isdigit() and len(code) <= 12:
        number = int(code)
    rule = META_ERRORS.get(number) if number is not None else None
    normalized, retryable = (rule.code, rule.retryable) if rule else ("provider_error", False)
    title = _str(raw.get("title")) or _str(raw.get("message"))
    data = raw.get("error_data")
    details = _str(data.get("details")) if isinstance(data, dict) else None
    message = title or (f"Meta error {number}" if number is not None else "Meta reported the message as failed")
    if details and details != title:
        message = f"{message}: {details}"
    return {
        "code": normalized,
        "provider_code": str(number) if number is not None else None,
        "message": message[:1000],
        "retryable": retryable,
    }


# ------------------------------------------------------------------------------------------------- helpers
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _obj(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A non-blank string (numbers as their text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _short(value: Any, limit: int) -> str | None:
    """``_str``, cut to ``limit`` characters: fields stored as they are must keep the item under DynamoDB's 400 KB."""
    text = _str(value)
    return text[:limit] if text is not None else None


def _identifier(value: Any, what: str) -> str:
    text = _str(value)
    if text is None or len(text) > _MAX_ID or any(c.isspace() for c in text):
        raise ItemRejected(f"{what} is missing or malformed")
    return text


def _phone_or_raw(value: str) -> str:
    try:
        return from_wa_id(value)
    except ValueError:
        return value


def _timestamp(value: Any) -> str | None:
    """Meta's unix seconds (a string) → ISO 8601 UTC; None when absent or implausible."""
    text = _str(value)
    if text is None or not text.isdigit() or len(text) > 12:
        return None
    try:
        return ids.iso(datetime.fromtimestamp(int(text), UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _bounded(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free-form parts stay well inside DynamoDB's item limit; oversized ones are replaced by a marker."""
    if value is None:
        return None
    size = len(json.dumps(value, ensure_ascii=False, default=str))
    if size <= MAX_ITEM_JSON:
        return value
    return {"truncated": True, "size": size}
