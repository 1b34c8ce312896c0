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
from typing import Any

from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.contact import BSUID as _BSUID
from gateway.domain.contact import ContactRef, clean_username
from gateway.domain.errors import BadRequest
from gateway.domain.message import (
    AccountNotice,
    Amendment,
    AmendmentKind,
    InboundMessage,
    MediaRef,
    Origin,
)
from gateway.domain.phone import from_wa_id
from gateway.providers.send_errors import META as META_ERRORS

PROVIDER = "meta"
SIGNATURE_HEADER = "x-hub-signature-256"
WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"
ECHOES_FIELD = "smb_message_echoes"
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
_ID = re.compile(r"\S{1,256}")
_EPOCH = re.compile(r"[0-9]{1,12}")
# Meta's wa_id / from: the phone number's digits (E.164 without the +, DESIGN §2: 7-15 digits, no leading 0).
_WA_ID = re.compile(r"\+?[1-9][0-9]{6,14}")
_GROUP_ID = re.compile(r"[0-9A-Za-z@._:-]{1,128}")


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
    return hmac.compare_digest(hmac.digest(app_secret.encode("utf-8"), body, "sha256"), digest)


# ---------------------------------------------------------------------------------------------- structure
@dataclass(slots=True)
class Change:
    """One ``entry[].changes[]`` item."""

    entry_id: str | None
    field: str
    value: dict[str, Any]
    phone_number_id: str | None


@dataclass(slots=True)
class Notification:
    object: str | None
    changes: list[Change]
    size: int = 0  # bytes of the body

    @property
    def waba_ids(self) -> list[str]:
        """The WhatsApp Business Account ids (``entry[].id``) of changes that name no phone number: their only
        way to a channel (docs/decisions.md, "WABA-level notifications")."""
        return list(dict.fromkeys(c.entry_id for c in self.changes if c.phone_number_id is None and c.entry_id))

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


# Built once: ``json.loads`` with hooks builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def parse_notification(body: bytes) -> Notification:
    """The notification's entries and changes. BadRequest when the body is not JSON of Meta's shape.

    Objects other than ``whatsapp_business_account`` (an app subscribed to other products) parse to a
    notification without changes: nothing for this gateway to do.
    """
    try:
        text = body.decode("utf-8")
        data = _DECODER.decode(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest("The request body is not valid UTF-8 JSON.") from error
    if ("\\ud" in text or "\\uD" in text) and _SURROGATE_ESCAPE.search(text):  # substring tests are cheap
        data = without_lone_surrogates(data)
    if type(data) is not dict:
        raise BadRequest("The request body must be a JSON object.")
    kind = data.get("object")
    if type(kind) is not str:
        raise BadRequest("The notification has no 'object'.", field="object")
    if kind != WHATSAPP_OBJECT:
        return Notification(kind, [], len(body))
    entries = data.get("entry")
    if type(entries) is not list:
        raise BadRequest("'entry' must be a list.", field="entry")
    changes: list[Change] = []
    for i, entry in enumerate(entries):
        entry_changes = entry.get("changes", _NO_CHANGES) if type(entry) is dict else None
        if type(entry_changes) is not list:
            raise BadRequest(f"entry[{i}] must be an object with a 'changes' list.", field=f"entry[{i}]")
        entry_id = _entry_id(entry.get("id"))
        for j, change in enumerate(entry_changes):
            name = change.get("field") if type(change) is dict else None
            if type(name) is not str:
                where = f"entry[{i}].changes[{j}]"
                raise BadRequest(f"{where} must be an object with a 'field'.", field=where)
            value = change.get("value")
            numbered = name in _NUMBERED_FIELDS
            if type(value) is not dict:
                if numbered:
                    where = f"entry[{i}].changes[{j}]"
                    raise BadRequest(f"{where}.value must be an object.", field=f"{where}.value")
                value = {}
            changes.append(Change(entry_id, name, value, _phone_number_id(value, i, j, required=numbered)))
    return Notification(kind, changes, len(body))


_NO_CHANGES: list[Any] = []  # an entry without "changes" (never mutated)
# Fields whose value must name the business number it is about (metadata.phone_number_id).
_NUMBERED_FIELDS = frozenset({MESSAGES_FIELD, ECHOES_FIELD})


def _entry_id(raw: Any) -> str | None:
    """``entry[].id``: the WABA id (numeric). Anything else cannot name a WABA and is ignored."""
    text = str(raw) if type(raw) in (str, int) else None
    return text if text is not None and _GRAPH_ID.fullmatch(text) else None


def _phone_number_id(value: Mapping[str, Any], i: int, j: int, *, required: bool) -> str | None:
    metadata = value.get("metadata")
    raw = metadata.get("phone_number_id") if type(metadata) is dict else None
    if raw is None or type(raw) is bool:
        if required:
            where = f"entry[{i}].changes[{j}]"
            raise BadRequest(f"{where}.value.metadata.phone_number_id is missing.", field=f"{where}.value.metadata")
        return None
    text = raw if type(raw) is str else str(raw)
    if type(raw) not in (str, int) or not _GRAPH_ID.fullmatch(text):
        where = f"entry[{i}].changes[{j}]"
        raise BadRequest(f"{where}.value.metadata.phone_number_id must be a numeric id.", field=f"{where}.value")
    return text


# ------------------------------------------------------------------------------------------ normalization
class ItemRejected(ValueError):
    """One message or status inside an authentic notification that cannot be used (reported, skipped)."""


@dataclass(slots=True)
class ChangeContent:
    """What one change carries, normalized (docs/webhook-fields.md says what the gateway does with each)."""

    webhook_field: str = MESSAGES_FIELD
    messages: list[InboundMessage] = field(default_factory=list)  # contacts' messages and business-app echoes
    amendments: list[Amendment] = field(default_factory=list)  # edits and deletions
    statuses: list[st.StatusUpdate] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    notices: list[AccountNotice] = field(default_factory=list)  # WABA-level news: templates, consent, health
    ignored_statuses: list[str] = field(default_factory=list)  # provider statuses outside our vocabulary
    rejected: list[str] = field(default_factory=list)  # why an item was skipped (no ids, no content)

    @property
    def items(self) -> int:
        return len(self.messages) + len(self.amendments) + len(self.statuses) + len(self.notices)


def normalize(notification: Notification, *, now: str | None = None) -> list[ChangeContent]:
    """Every change of a parsed notification, normalized (one ``ChangeContent`` per change, in order). ``now``
    stands in for a missing timestamp (computed only when one is missing)."""
    small = notification.size <= MAX_ITEM_JSON  # no part of a small body can outgrow an item: skip measuring
    return [
        normalize_change(c.value, field=c.field, now=now, small=small, waba_id=c.entry_id)
        for c in notification.changes
    ]


def normalize_change(
    value: Mapping[str, Any],
    *,
    field: str = MESSAGES_FIELD,
    now: str | None = None,
    small: bool = False,
    waba_id: str | None = None,
) -> ChangeContent:
    """Every message, echo, edit, status, error and notice of one ``value``; unusable items land in ``rejected``."""
    content = ChangeContent(webhook_field=field)
    handler = _FIELDS.get(field)
    if handler is None:
        return content  # counted by the service; nothing in it for the gateway
    handler(content, value, now, small, waba_id)
    return content


def _messages_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    people = _People(value.get("contacts"))
    raw_messages, raw_statuses = value.get("messages"), value.get("statuses")
    for kind, items in (("messages", raw_messages), ("statuses", raw_statuses)):
        if items is not None and type(items) is not list:
            content.rejected.append(f"'{kind}' is not a list")
    if type(raw_messages) is list:
        for raw in raw_messages:
            try:
                _append(content, normalize_message(raw, people, small=small))
            except ItemRejected as error:
                content.rejected.append(str(error))
    if type(raw_statuses) is list:
        for raw in raw_statuses:
            try:
                update = normalize_status(raw, now=now, small=small)
            except ItemRejected as error:
                content.rejected.append(str(error))
                continue
            if update is None:
                content.ignored_statuses.append(str(raw.get("status")))
            else:
                content.statuses.append(update)
    errors = value.get("errors")
    if type(errors) is list:
        content.errors = [normalize_error(e) for e in errors if type(e) is dict]


def _echoes_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    """``smb_message_echoes``: what the business wrote from the WhatsApp Business app (``from`` = the business,
    ``to`` = the contact)."""
    people = _People(value.get("contacts"))
    echoes = value.get("message_echoes")
    if echoes is not None and type(echoes) is not list:
        content.rejected.append("'message_echoes' is not a list")
        return
    for raw in echoes or ():
        try:
            _append(content, normalize_message(raw, people, small=small, origin=Origin.BUSINESS_APP))
        except ItemRejected as error:
            content.rejected.append(str(error))


def _append(content: ChangeContent, item: InboundMessage | Amendment) -> None:
    if type(item) is Amendment:
        content.amendments.append(item)
    else:
        content.messages.append(item)  # type: ignore[arg-type]


class _People:
    """``value.contacts[]`` indexed by ``wa_id`` and by ``user_id``: who a message's sender (or an echo's
    recipient) is, with profile name, username and parent BSUID."""

    __slots__ = ("by_id",)

    def __init__(self, contacts: Any) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        if type(contacts) is not list:
            return
        for contact in contacts:
            if type(contact) is not dict:
                continue
            for key in ("wa_id", "user_id"):
                known = contact.get(key)
                if type(known) is str and known:
                    self.by_id[known] = contact
                elif type(known) is int:
                    self.by_id[str(known)] = contact

    def ref(self, phone_field: Any, user_field: Any, parent_field: Any, where: str) -> ContactRef:
        """The contact named by a message's ``from``/``from_user_id`` (or an echo's ``to``/``to_user_id``).
        ``from`` may itself hold a BSUID (a user without a shared phone number). ItemRejected with neither."""
        phone = user_id = None
        raw_phone = str(phone_field) if type(phone_field) is int else phone_field
        if type(raw_phone) is str and raw_phone:
            if _WA_ID.fullmatch(raw_phone):
                phone = "+" + raw_phone.lstrip("+")
            elif _BSUID.fullmatch(raw_phone):
                user_id = raw_phone
            else:
                raise ItemRejected(f"{where}: the sender is neither a phone number nor a WhatsApp user id")
        if type(user_field) is str and user_field:
            if not _BSUID.fullmatch(user_field):
                raise ItemRejected(f"{where}: the WhatsApp user id is malformed")
            user_id = user_field
        if phone is None and user_id is None:
            raise ItemRejected(f"{where} has no sender")
        contact = (self.by_id.get(phone_field) if type(phone_field) is str else None) or (
            self.by_id.get(user_id) if user_id else None
        )
        name = username = parent = None
        if contact is not None:
            profile = contact.get("profile")
            if type(profile) is dict:
                name = _name(profile.get("name"))
                username = clean_username(profile.get("username"))
            if user_id is None:
                known = contact.get("user_id")
                user_id = known if type(known) is str and _BSUID.fullmatch(known) else None
            parent = contact.get("parent_user_id")
        if type(parent_field) is str:
            parent = parent_field
        if type(parent) is not str or not _BSUID.fullmatch(parent):
            parent = None
        return ContactRef(phone=phone, wa_user_id=user_id, parent_user_id=parent, username=username, name=name)


def contact_ref(raw: Mapping[str, Any], contacts: Any = None) -> ContactRef:
    """The sender of one ``value.messages[]`` item (tests, other callers); ItemRejected when there is none."""
    return _People(contacts).ref(raw.get("from"), raw.get("from_user_id"), raw.get("from_parent_user_id"), "message")


def normalize_message(
    raw: Any, people: _People | None = None, *, small: bool = False, origin: Origin = Origin.CONTACT
) -> InboundMessage | Amendment:
    """One ``value.messages[]`` (or ``message_echoes[]``) item → InboundMessage, or an Amendment for ``edit`` /
    ``revoke``. ItemRejected when it has no usable id or contact."""
    if type(raw) is not dict:
        raise ItemRejected("a message is not an object")
    message_id = _identifier(raw.get("id"), "message id")
    people = people or _NOBODY
    if origin is Origin.BUSINESS_APP:
        contact = people.ref(raw.get("to"), raw.get("to_user_id"), raw.get("to_parent_user_id"), f"echo {message_id}")
    else:
        contact = people.ref(
            raw.get("from"), raw.get("from_user_id"), raw.get("from_parent_user_id"), f"message {message_id}"
        )
    meta_type = raw.get("type")
    if type(meta_type) is not str or not meta_type:
        meta_type = "unsupported"
    timestamp = _timestamp(raw.get("timestamp"))
    if meta_type in _AMENDMENTS:
        return _amendment(raw, message_id, meta_type, contact, timestamp, origin)
    message = InboundMessage(PROVIDER, message_id, contact, meta_type, provider_timestamp=timestamp, origin=origin)
    _FILL.get(meta_type, _unsupported)(message, raw)
    if "context" in raw or "referral" in raw:
        message.context = _context(raw)
    group = raw.get("group_id")
    if type(group) is str and _GROUP_ID.fullmatch(group):
        message.group_id = group
    if not small:
        message.context = _bounded(message.context)
        message.content = _bounded(message.content)
    if message.text is not None and len(message.text) > MAX_TEXT:
        message.text = message.text[:MAX_TEXT]
    return message


_AMENDMENTS = {"edit": AmendmentKind.EDIT, "revoke": AmendmentKind.REVOKE}


def _amendment(
    raw: dict[str, Any], message_id: str, meta_type: str, contact: ContactRef, timestamp: str | None, origin: Origin
) -> Amendment:
    body = _obj(raw, meta_type)
    original = _identifier(body.get("original_message_id"), f"{meta_type} {message_id}: original message id")
    text = None
    if meta_type == "edit":
        edited = _obj(body, "message")
        kind = edited.get("type")
        inner = _obj(edited, kind) if type(kind) is str else {}
        text = _short(inner.get("body") if kind == "text" else inner.get("caption"), MAX_TEXT)
    return Amendment(PROVIDER, message_id, original, _AMENDMENTS[meta_type], contact, text, timestamp, origin)


def _text(message: InboundMessage, raw: dict[str, Any]) -> None:
    body = raw.get("text")
    if type(body) is dict:
        text = body.get("body")
        message.text = text if type(text) is str and text.strip() else _str(text)


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
    if body.get("voice") is True or body.get("animated") is True:
        message.content = {key: True for key in ("voice", "animated") if body.get(key) is True}


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
    for key in ("user_id", "new_user_id", "parent_user_id"):
        if (known := _str(body.get(key))) is not None:
            content[key] = known
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
_STATUS_DETAILS = (
    "recipient_id",
    "recipient_user_id",
    "recipient_parent_user_id",
    "recipient_type",
    "conversation",
    "pricing",
    "biz_opaque_callback_data",
)


def normalize_status(raw: Any, *, now: str | None = None, small: bool = False) -> st.StatusUpdate | None:
    """One ``value.statuses[]`` item → StatusUpdate; None for a status outside the contract's vocabulary.

    Errors become the contract's normalized error (the first one; all are kept in details when several);
    ``pricing``, ``conversation``, the recipient (phone and/or BSUID) and ``biz_opaque_callback_data`` are kept
    in details.
    """
    if type(raw) is not dict:
        raise ItemRejected("a status is not an object")
    message_id = _identifier(raw.get("id"), "status message id")
    provider_status = _str(raw.get("status"))
    if provider_status is None:
        raise ItemRejected(f"status for {message_id} has no 'status'")
    status = st.from_meta(provider_status)
    if status is None:
        return None
    raw_errors = raw.get("errors")
    errors = [normalize_error(e) for e in raw_errors if type(e) is dict] if type(raw_errors) is list else []
    details: dict[str, Any] = {key: raw[key] for key in _STATUS_DETAILS if key in raw}
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
        at=_timestamp(raw.get("timestamp")) or now or ids.now_iso(),
        error=error,
        details=(details if small else _bounded(details)) or None,
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


# ----------------------------------------------------------------------------------- WABA-level notices
def _template_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    """``message_template_status_update`` / ``_quality_update`` / ``_components_update`` and
    ``template_category_update``: one template (id, name, language) and what changed about it."""
    template_id = _str(value.get("message_template_id"))
    if template_id is None:
        content.rejected.append(f"{content.webhook_field} without message_template_id")
        return
    data: dict[str, Any] = {
        "template_id": template_id,
        "name": _short(value.get("message_template_name"), MAX_FIELD),
        "language": _short(value.get("message_template_language"), 32),
    }
    for source, target in _TEMPLATE_KEYS.get(content.webhook_field, ()):
        if (known := _str(value.get(source))) is not None:
            data[target] = known[:MAX_FIELD]
    other = value.get("other_info")
    if type(other) is dict:
        data["info"] = {k: v[:MAX_FIELD] for k in ("title", "description") if type(v := other.get(k)) is str}
    content.notices.append(AccountNotice(content.webhook_field, waba_id, None, data))


_TEMPLATE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "message_template_status_update": (
        ("event", "status"),
        ("reason", "reason"),
        ("message_template_category", "category"),
    ),
    "message_template_quality_update": (
        ("new_quality_score", "quality"),
        ("previous_quality_score", "previous_quality"),
    ),
    "template_category_update": (("new_category", "category"), ("previous_category", "previous_category")),
    "message_template_components_update": (
        ("message_template_element", "body"),
        ("message_template_title", "header"),
        ("message_template_footer", "footer"),
    ),
}


def _preferences_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    """``user_preferences``: a contact stopped or resumed marketing messages (honoured as consent)."""
    people = _People(value.get("contacts"))
    phone_number_id = _metadata_id(value)
    for raw in _list(value.get("user_preferences")):
        if type(raw) is not dict:
            content.rejected.append("a user preference is not an object")
            continue
        try:
            contact = people.ref(raw.get("wa_id"), raw.get("user_id"), raw.get("parent_user_id"), "user preference")
        except ItemRejected as error:
            content.rejected.append(str(error))
            continue
        choice = _str(raw.get("value"))
        if choice not in {"stop", "resume"}:
            content.rejected.append(f"user preference value {str(choice)[:20]!r} is not stop/resume")
            continue
        data = {
            "category": _short(raw.get("category"), 64),
            "marketing_opted_out": choice == "stop",
            "at": _timestamp(raw.get("timestamp")) or now or ids.now_iso(),
            "detail": _short(raw.get("detail"), MAX_FIELD),
        }
        content.notices.append(AccountNotice(content.webhook_field, waba_id, phone_number_id, data, contact))


def _number_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    """``phone_number_quality_update`` / ``phone_number_name_update``: news about one of the WABA's numbers, named
    by its display number (these notifications carry no phone_number_id)."""
    data = {
        key: text[:MAX_FIELD]
        for key in (
            "display_phone_number",
            "event",
            "current_limit",
            "old_limit",
            "max_daily_conversations_per_business",
            "decision",
            "requested_verified_name",
            "rejection_reason",
        )
        if (text := _str(value.get(key))) is not None
    }
    content.notices.append(AccountNotice(content.webhook_field, waba_id, None, data))


def _account_field(
    content: ChangeContent, value: Mapping[str, Any], now: str | None, small: bool, waba_id: str | None
) -> None:
    """``account_update``, ``account_review_update``, ``business_capability_update``, ``security``: recorded with
    their event (or decision) so that operators see them; nothing in the gateway changes."""
    data = {key: text[:MAX_FIELD] for key in ("event", "decision") if (text := _str(value.get(key))) is not None}
    content.notices.append(AccountNotice(content.webhook_field, waba_id, None, data))


def _metadata_id(value: Mapping[str, Any]) -> str | None:
    metadata = value.get("metadata")
    known = metadata.get("phone_number_id") if type(metadata) is dict else None
    return str(known) if type(known) in (str, int) else None


_FIELDS: dict[str, Callable[[ChangeContent, Mapping[str, Any], str | None, bool, str | None], None]] = {
    MESSAGES_FIELD: _messages_field,
    ECHOES_FIELD: _echoes_field,
    "message_template_status_update": _template_field,
    "message_template_quality_update": _template_field,
    "message_template_components_update": _template_field,
    "template_category_update": _template_field,
    "user_preferences": _preferences_field,
    "phone_number_quality_update": _number_field,
    "phone_number_name_update": _number_field,
    "account_update": _account_field,
    "account_review_update": _account_field,
    "business_capability_update": _account_field,
    "security": _account_field,
}
# Fields the gateway parses (everything else is counted by name and answered 200): docs/webhook-fields.md.
HANDLED_FIELDS = frozenset(_FIELDS)


# ------------------------------------------------------------------------------------------------- helpers
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _obj(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A non-blank string (numbers as their text), else None."""
    if type(value) is str:
        return value if value.strip() else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _short(value: Any, limit: int) -> str | None:
    """``_str``, cut to ``limit`` characters: fields stored as they are must keep the item under DynamoDB's 400 KB."""
    text = _str(value)
    return text[:limit] if text is not None else None


def _name(value: Any) -> str | None:
    if type(value) is not str:
        return None
    name = value.strip()
    return name[:256] if name else None


def _identifier(value: Any, what: str) -> str:
    """A provider id: 1-256 characters, none of them whitespace (one C-level regex match, no per-character loop)."""
    if type(value) is str:
        if _ID.fullmatch(value):
            return value
    elif type(value) is int:
        return str(value)
    raise ItemRejected(f"{what} is missing or malformed")


def _phone_or_raw(value: str) -> str:
    try:
        return from_wa_id(value)
    except ValueError:
        return value


def _timestamp(value: Any) -> str | None:
    """Meta's unix seconds (a string, sometimes a number) → ISO 8601 UTC; None when absent or implausible."""
    if type(value) is str:
        if not _EPOCH.fullmatch(value):
            return None
        seconds = int(value)
    elif type(value) is int:
        seconds = value
    else:
        return None
    return ids.iso_from_epoch(seconds) if 0 < seconds <= ids.MAX_EPOCH else None


def _bounded(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free-form parts stay well inside DynamoDB's item limit; oversized ones are replaced by a marker. Only
    called for bodies larger than the limit itself (``normalize``): a smaller body cannot hold a larger part."""
    if value is None:
        return None
    size = len(json.dumps(value, ensure_ascii=False, default=str))
    if size <= MAX_ITEM_JSON:
        return value
    return {"truncated": True, "size": size}


_NOBODY = _People(None)
