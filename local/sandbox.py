"""Provider sandbox: a small HTTP server standing in for Twilio's REST API and Meta's Graph API.

The gateway's provider clients reach it through ``TWILIO_API_BASE_URL`` / ``META_GRAPH_BASE_URL``. Behaviour is
a route table, so a feature adds a route without touching the server. Sends are answered like the providers
answer them, and followed by signed status reports (Twilio callbacks, Meta notifications) back to the gateway.
Any credential containing ``revoked`` is rejected the way the real provider rejects bad credentials, so the
"credentials rejected" path can be tested end to end.

Every request received is kept (``GET /_sandbox/requests``, cleared with ``DELETE``) for tests to inspect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from local.apigw import HttpRequest, HttpResponse, json_response

log = logging.getLogger("local.sandbox")

REVOKED_MARKER = "revoked"


@dataclass
class SandboxRequest:
    http: HttpRequest
    params: dict[str, str]  # named groups of the route pattern

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.http.query_string, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.http.headers if k.lower() == name.lower()), None)

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


RouteHandler = Callable[["ProviderSandbox", SandboxRequest], HttpResponse]


@dataclass(frozen=True)
class SandboxRoute:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler


def route(method: str, pattern: str) -> Callable[[RouteHandler], SandboxRoute]:
    """Declare a sandbox route; ``pattern`` is a regex over the path with named groups."""

    def decorate(handler: RouteHandler) -> SandboxRoute:
        return SandboxRoute(method, re.compile(f"^{pattern}$"), handler)

    return decorate


@dataclass(frozen=True)
class SandboxMedia:
    id: str
    content: bytes
    mime_type: str
    sha256: str  # what the Graph lookup advertises (the real hash unless a test asked for another)
    host: str | None = None  # advertise the download on this host instead of the sandbox's own


@dataclass
class ProviderSandbox:
    routes: list[SandboxRoute] = field(default_factory=list)
    _log: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Media uploaded by tests (POST /_sandbox/media), served the way Meta and Twilio serve inbound media.
    media: dict[str, SandboxMedia] = field(default_factory=dict)
    # Meta posts status notifications to the app's webhook, signed with the app's secret: where that webhook is
    # (the local gateway's /webhooks/meta) and which secret signs for a phone number id. Without both, a Meta
    # send gets no status notifications.
    meta_webhook_url: str | None = None
    meta_app_secret: Callable[[str], str | None] | None = None

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_sandbox/requests":
            return self._requests(request)
        self._record(request)
        for candidate in self.routes:
            match = candidate.pattern.match(request.path)
            if match and candidate.method == request.method.upper():
                return candidate.handler(self, SandboxRequest(request, match.groupdict()))
        return json_response(404, {"message": f"sandbox has no route for {request.method} {request.path}"})

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def _record(self, request: HttpRequest) -> None:
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8", errors="replace"),
        }
        with self._lock:
            self._log.append(entry)

    def _requests(self, request: HttpRequest) -> HttpResponse:
        if request.method.upper() == "DELETE":
            with self._lock:
                self._log.clear()
            return HttpResponse(204, [], b"")
        return json_response(200, {"requests": self.requests()})


# ------------------------------------------------------------------------------------------------ Twilio
TWILIO_API = "/2010-04-01"


def twilio_error(status: int, code: int, message: str) -> HttpResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    response = json_response(status, body)
    if status == 401:
        response.headers.append(("WWW-Authenticate", 'Basic realm="Twilio API"'))
    return response


def twilio_credentials(request: SandboxRequest) -> tuple[str, str] | None:
    """(username, password) of valid-looking Basic auth, or None (→ 401 20003 like Twilio)."""
    header = request.header("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    if not username or not password or REVOKED_MARKER in f"{username}:{password}".lower():
        return None
    return username, password


def _twilio_time() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())


def _sid(prefix: str, seed: str | None = None) -> str:
    """A Twilio-shaped sid (prefix + 32 hex); stable for a seed so repeated lookups agree."""
    if seed is None:
        return prefix + secrets.token_hex(16)
    return prefix + hashlib.md5(seed.encode()).hexdigest()  # noqa: S324 - a fake id, not security


@route("GET", rf"{TWILIO_API}/Accounts/(?P<account_sid>[^/]+)\.json")
def twilio_fetch_account(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    if twilio_credentials(request) is None:
        return twilio_error(401, 20003, "Authenticate")
    sid = request.params["account_sid"]
    uri = f"{TWILIO_API}/Accounts/{sid}"
    return json_response(
        200,
        {
            "sid": sid,
            "owner_account_sid": sid,
            "friendly_name": "Sandbox account",
            "status": "active",
            "type": "Full",
            "auth_token": "[redacted]",
            "date_created": _twilio_time(),
            "date_updated": _twilio_time(),
            "uri": f"{uri}.json",
            "subresource_uris": {
                "incoming_phone_numbers": f"{uri}/IncomingPhoneNumbers.json",
                "messages": f"{uri}/Messages.json",
            },
        },
    )


@route("GET", rf"{TWILIO_API}/Accounts/(?P<account_sid>[^/]+)/IncomingPhoneNumbers\.json")
def twilio_list_numbers(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    if twilio_credentials(request) is None:
        return twilio_error(401, 20003, "Authenticate")
    account_sid = request.params["account_sid"]
    wanted = request.query_value("PhoneNumber") or "+14155238886"  # Twilio's WhatsApp sandbox sender
    uri = f"{TWILIO_API}/Accounts/{account_sid}/IncomingPhoneNumbers.json"
    number_sid = _sid("PN", f"{account_sid}{wanted}")
    number = {
        "sid": number_sid,
        "account_sid": account_sid,
        "phone_number": wanted,
        "friendly_name": wanted,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "status": "in-use",
        "origin": "twilio",
        "api_version": "2010-04-01",
        "date_created": _twilio_time(),
        "date_updated": _twilio_time(),
        "uri": f"{TWILIO_API}/Accounts/{account_sid}/IncomingPhoneNumbers/{number_sid}.json",
    }
    return json_response(
        200,
        {
            "incoming_phone_numbers": [number],
            "start": 0,
            "end": 0,
            "page": 0,
            "page_size": 50,
            "first_page_uri": f"{uri}?PageSize=50&Page=0",
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": f"{uri}?PageSize=50&Page=0",
        },
    )


# Sends: a text (or caption) containing "sandbox-error:<code>" is refused with that provider error code, so that
# error paths can be driven end to end (e.g. "sandbox-error:63016" on Twilio, "sandbox-error:131047" on Meta).
SANDBOX_ERROR = re.compile(r"sandbox-error:(\d+)")


def _injected_error(text: str | None) -> int | None:
    match = SANDBOX_ERROR.search(text or "")
    return int(match.group(1)) if match else None


# Status reports: after accepting a send, the sandbox reports sent → delivered → read from a background thread, as
# the provider would (Twilio: to the send's StatusCallback URL; Meta: to the app's webhook, see meta_send_message).
# Like the providers', the first may arrive before the sender has processed the send's response.
CALLBACK_STATUSES = ("sent", "delivered", "read")
CALLBACK_DELAY_S = float(os.environ.get("SANDBOX_CALLBACK_DELAY_S", "0.05"))


PlannedPost = tuple[str, str, bytes, dict[str, str]]  # (status, url, body, headers)


def post_in_background(name: str, posts: Callable[[], list[PlannedPost]]) -> threading.Thread:
    """Run ``posts()`` on a thread, then POST each (status, url, body, headers) it gives, one every
    ``CALLBACK_DELAY_S``: the send's answer never waits for its status reports."""
    import requests

    def post_all() -> None:
        try:
            planned = posts()
        except Exception:  # a report the sandbox cannot make is logged, never raised into the server
            log.exception("sandbox %s: status reports not sent", name)
            return
        for status, url, body, headers in planned:
            time.sleep(CALLBACK_DELAY_S)
            try:
                answer = requests.post(url, data=body, headers=headers, timeout=15)
                log.info("sandbox %s: %s -> %s", name, status, answer.status_code)
            except requests.RequestException as error:
                log.warning("sandbox %s: %s to %s failed: %s", name, status, url, error)

    thread = threading.Thread(target=post_all, name=name, daemon=True)
    thread.start()
    return thread


def twilio_status_callback_params(message: dict[str, str | None], status: str) -> dict[str, str]:
    to = message.get("To") or ""
    params = {
        "MessageSid": message["MessageSid"] or "",
        "SmsSid": message["MessageSid"] or "",
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": message["AccountSid"] or "",
        "From": message.get("From") or "",
        "To": to,
        "ApiVersion": "2010-04-01",
        "ChannelPrefix": "whatsapp",
        "ChannelToAddress": to.removeprefix("whatsapp:"),
        "ChannelInstallSid": _sid("XE", message["AccountSid"]),
        "StructuredMessage": "false",
    }
    if status in ("delivered", "read"):
        params["EventType"] = status.upper()
    if message.get("MessagingServiceSid"):
        params["MessagingServiceSid"] = message["MessagingServiceSid"] or ""
    return params


def post_twilio_status_callbacks(url: str, auth_token: str, message: dict[str, str | None]) -> threading.Thread:
    """Form-encoded and signed like Twilio (twilio-python's RequestValidator, keyed with the auth token the send
    authenticated with), to the send's StatusCallback URL."""
    from local.sign_twilio import twilio_signature  # twilio-python, imported when a send asks for callbacks

    def posts() -> list[PlannedPost]:
        planned = []
        for status in CALLBACK_STATUSES:
            params = twilio_status_callback_params(message, status)
            planned.append((status, url, urlencode(params).encode(), {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(auth_token, url, list(params.items())),
                "User-Agent": "TwilioProxy/1.1",
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            }))
        return planned

    return post_in_background(f"twilio-callbacks-{message['MessageSid']}", posts)


@route("POST", rf"{TWILIO_API}/Accounts/(?P<account_sid>[^/]+)/Messages\.json")
def twilio_send_message(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """Like Twilio's Message create: 201 with the message resource, ``sid`` SM + 32 hex, status ``queued``."""
    if twilio_credentials(request) is None:
        return twilio_error(401, 20003, "Authenticate")
    form = parse_qs(request.http.body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def first(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values else None

    to, sender, service = first("To"), first("From"), first("MessagingServiceSid")
    body, media, content_sid = first("Body"), form.get("MediaUrl") or [], first("ContentSid")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender and not service:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not body and not media and not content_sid:
        return twilio_error(400, 21602, "Message body is required.")
    injected = _injected_error(body)
    if injected is not None:
        status = 429 if injected == 20429 else 400
        return twilio_error(status, injected, f"Sandbox: error {injected} requested by the message text")
    account_sid = request.params["account_sid"]
    sid = _sid("MM" if media else "SM")
    now = _twilio_time()
    uri = f"{TWILIO_API}/Accounts/{account_sid}/Messages/{sid}"
    callback_url = first("StatusCallback")
    credentials = twilio_credentials(request)
    if callback_url and sender and credentials is not None:
        post_twilio_status_callbacks(callback_url, credentials[1], {
            "MessageSid": sid, "AccountSid": account_sid, "From": sender, "To": to, "MessagingServiceSid": service,
        })
    return json_response(201, {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": service,
        "to": to,
        "from": sender,
        "body": body or "",
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "num_media": str(len(media)),
        "num_segments": "1",
        "price": None,
        "price_unit": None,
        "error_code": None,
        "error_message": None,
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "uri": f"{uri}.json",
        "subresource_uris": {"media": f"{uri}/Media.json"},
    })


# ------------------------------------------------------------------------------------------------ Meta
GRAPH_VERSION = r"(?P<version>v\d+\.\d+)"


def graph_error(status: int, message: str, *, code: int = 190, error_type: str = "OAuthException") -> HttpResponse:
    return json_response(
        status,
        {"error": {"message": message, "type": error_type, "code": code, "fbtrace_id": secrets.token_urlsafe(9)}},
    )


def graph_token(request: SandboxRequest) -> str | None:
    """The access token (Bearer header or ``access_token`` query parameter), or None when unusable."""
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else request.query_value("access_token") or ""
    if not token or REVOKED_MARKER in token.lower():
        return None
    return token


META_DEFAULT_FIELDS = ("display_phone_number", "verified_name", "quality_rating")


def _meta_phone_number(phone_number_id: str) -> dict[str, Any]:
    digits = phone_number_id[-7:].rjust(7, "0")
    return {
        "id": phone_number_id,
        "display_phone_number": f"+1 555-{digits[:3]}-{digits[3:]}",
        "verified_name": "Sandbox Business",
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "messaging_limit_tier": "TIER_1K",
        "account_mode": "LIVE",
        "status": "CONNECTED",
    }


@route("GET", rf"/{GRAPH_VERSION}/(?P<phone_number_id>\d+)")
def meta_get_phone_number(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    if graph_token(request) is None:
        return graph_error(401, "Error validating access token: the session is invalid or the token was revoked.")
    number = _meta_phone_number(request.params["phone_number_id"])
    requested = request.query_value("fields")
    fields = [f.strip() for f in requested.split(",") if f.strip()] if requested else list(META_DEFAULT_FIELDS)
    # Graph answers the requested fields plus id; unknown fields are a 400 there, silently dropped here.
    return json_response(200, {"id": number["id"], **{f: number[f] for f in fields if f in number}})


@route("POST", rf"/{GRAPH_VERSION}/(?P<phone_number_id>\d+)/messages")
def meta_send_message(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """Like the Cloud API: ``{messaging_product, contacts: [{input, wa_id}], messages: [{id: "wamid.…"}]}``;
    a read receipt (``status: read``) answers ``{"success": true}``. A send to a user without a phone names them
    by ``recipient`` (a BSUID) instead of ``to`` (``to`` wins when both are given), answered with
    ``contacts: [{input, user_id}]``."""
    if graph_token(request) is None:
        return graph_error(401, "Error validating access token: the session is invalid or the token was revoked.")
    try:
        payload = json.loads(request.http.body or b"{}")
    except ValueError:
        return graph_error(400, "(#100) The request body is not valid JSON", code=100)
    if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
        return graph_error(400, "(#100) The parameter messaging_product is required.", code=100)
    if payload.get("status") == "read":
        if not payload.get("message_id"):
            return graph_error(400, "(#100) The parameter message_id is required.", code=100)
        return json_response(200, {"success": True})
    to, recipient, kind = payload.get("to"), payload.get("recipient"), payload.get("type")
    if not (to or recipient) or not kind or not isinstance(payload.get(kind), dict):
        return graph_error(400, f"(#100) Param to (or recipient), type and the '{kind}' object are required.",
                           code=100)
    content = payload[kind]
    injected = _injected_error(content.get("body") or content.get("caption"))
    if injected is not None:
        return graph_error(400, f"(#{injected}) Sandbox: error requested by the message text", code=injected,
                           error_type="OAuthException")
    contact = {"input": to, "wa_id": str(to).lstrip("+")} if to else {"input": recipient, "user_id": recipient}
    wamid = "wamid." + base64.b64encode(f"sandbox-{secrets.token_hex(12)}".encode()).decode()
    if sandbox.meta_webhook_url and sandbox.meta_app_secret:
        # statuses name the recipient as the send did: its phone digits, or its BSUID
        named = {"recipient_id": contact["wa_id"]} if to else {"recipient_user_id": str(recipient)}
        post_meta_statuses(sandbox.meta_webhook_url, sandbox.meta_app_secret, request.params["phone_number_id"],
                           wamid, named, billable=kind == "template")
    return json_response(200, {
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{"id": wamid}],
    })


# Status notifications: after accepting a send, the sandbox posts sent → delivered → read to the app's webhook like
# Meta: one notification each, ``statuses[]`` with id, status, timestamp, the recipient (``recipient_id``, or
# ``recipient_user_id`` for a send addressed to a BSUID), and for sent and delivered
# the conversation and pricing (the shape of the spec's ``Statuses``), signed X-Hub-Signature-256 over the exact
# bytes with the app secret of the number's app.
def meta_status_notification(phone_number_id: str, wamid: str, recipient: dict[str, str], status: str, *, now: float,
                             billable: bool = False) -> dict[str, Any]:
    number = _meta_phone_number(phone_number_id)
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(now)), **recipient}
    recipient_id = next(iter(recipient.values()))
    if status in ("sent", "delivered"):
        category = "marketing" if billable else "service"
        item["conversation"] = {
            "id": hashlib.md5(f"{phone_number_id}/{recipient_id}".encode()).hexdigest(),  # noqa: S324 - a fake id
            "expiration_timestamp": str(int(now) + 24 * 3600),
            "origin": {"type": category},
        }
        item["pricing"] = {"billable": billable, "pricing_model": "PMP", "category": category}
    waba_id = str(int(hashlib.sha256(phone_number_id.encode()).hexdigest()[:12], 16))
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": re.sub(r"\D", "", number["display_phone_number"]),
                         "phone_number_id": phone_number_id},
            "statuses": [item],
        }}]}],
    }


def meta_webhook_headers(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers Meta posts a webhook notification with: ``X-Hub-Signature-256`` over the exact body bytes."""
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": signature, "User-Agent": "facebookexternalua"}


def post_meta_statuses(url: str, app_secret: Callable[[str], str | None], phone_number_id: str, wamid: str,
                       recipient: dict[str, str], *, billable: bool = False) -> threading.Thread:
    def posts() -> list[PlannedPost]:
        secret = app_secret(phone_number_id)  # on the thread: it may read the store
        if not secret:
            log.warning("sandbox: no app secret for Meta phone number id %s, so no status notifications",
                        phone_number_id)
            return []
        planned = []
        for status in CALLBACK_STATUSES:
            notification = meta_status_notification(phone_number_id, wamid, recipient, status, now=time.time(),
                                                    billable=billable)
            body = json.dumps(notification).encode("ascii")  # like Meta: non-ASCII escaped, signed as sent
            planned.append((status, url, body, meta_webhook_headers(body, secret)))
        return planned

    return post_in_background(f"meta-statuses-{wamid}", posts)


# ------------------------------------------------------------------------------------------------ media
# Inbound media, for the inbound processor: a test (or a developer) uploads bytes with
#   POST /_sandbox/media  (body = the bytes, Content-Type = their type; optional query ``sha256=`` to advertise
#                          another hash, ``host=`` to advertise the download on another host, ``account_sid=``
#                          for the Twilio URL)
# → {"id", "meta_url", "twilio_url", "sha256", "file_size"}. Then, like the providers:
# - Meta: GET /{ver}/{id} with a Bearer token → {messaging_product, url, mime_type, sha256, file_size, id}, and
#   GET <url> with the Bearer token → the bytes;
# - Twilio: GET /2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{id} with Basic auth → 307 to a "CDN" URL on
#   another host name (localhost) that refuses any Authorization header → the bytes.


def _own_host(request: SandboxRequest) -> tuple[str, str]:
    """(host:port the request was sent to, port)."""
    host = request.header("Host") or "127.0.0.1"
    return host, host.rpartition(":")[2] if ":" in host else "80"


@route("POST", r"/_sandbox/media")
def sandbox_upload_media(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    content = request.http.body
    mime_type = (request.header("Content-Type") or "application/octet-stream").split(";")[0].strip()
    media_id = str(10**15 + secrets.randbelow(9 * 10**15))  # Meta's media ids are long digit strings
    media = SandboxMedia(
        id=media_id,
        content=content,
        mime_type=mime_type,
        sha256=request.query_value("sha256") or hashlib.sha256(content).hexdigest(),
        host=request.query_value("host"),
    )
    with sandbox._lock:
        sandbox.media[media_id] = media
    host, _ = _own_host(request)
    account_sid = request.query_value("account_sid") or "AC" + "0" * 32
    return json_response(201, {
        "id": media_id,
        "meta_url": f"http://{host}/_sandbox/media/{media_id}",
        "twilio_url": f"http://{host}{TWILIO_API}/Accounts/{account_sid}/Messages/MM{media_id}/Media/ME{media_id}",
        "sha256": media.sha256,
        "file_size": len(content),
    })


def _stored_media(sandbox: ProviderSandbox, media_id: str) -> SandboxMedia | None:
    with sandbox._lock:
        return sandbox.media.get(media_id)


def _media_bytes(media: SandboxMedia) -> HttpResponse:
    return HttpResponse(200, [("Content-Type", media.mime_type)], media.content)


@route("GET", rf"/{GRAPH_VERSION}/(?P<phone_number_id>\d+)")
def meta_get_media(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """Graph ``GET /{ver}/{media-id}`` for uploaded media; any other id is a phone number (health check)."""
    media = _stored_media(sandbox, request.params["phone_number_id"])
    if media is None:
        return meta_get_phone_number.handler(sandbox, request)
    if graph_token(request) is None:
        return graph_error(401, "Error validating access token: the session is invalid or the token was revoked.")
    host = media.host or _own_host(request)[0]
    return json_response(200, {
        "messaging_product": "whatsapp",
        "url": f"http://{host}/_sandbox/media/{media.id}",
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "file_size": len(media.content),
        "id": media.id,
    })


@route("GET", r"/_sandbox/media/(?P<media_id>\d+)")
def meta_download_media(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """The lookaside download: Bearer token required, like Meta."""
    media = _stored_media(sandbox, request.params["media_id"])
    if media is None:
        return graph_error(404, "(#100) Unknown media", code=100)
    if graph_token(request) is None:
        return graph_error(401, "Error validating access token: the session is invalid or the token was revoked.")
    return _media_bytes(media)


@route("GET", rf"{TWILIO_API}/Accounts/(?P<account_sid>[^/]+)/Messages/(?P<message_sid>[^/]+)"
              r"/Media/ME(?P<media_id>\d+)")
def twilio_media(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """Twilio's media URL: Basic auth required, answered with a redirect to the CDN on another host name."""
    if twilio_credentials(request) is None:
        return twilio_error(401, 20003, "Authenticate")
    if _stored_media(sandbox, request.params["media_id"]) is None:
        return twilio_error(404, 20404, "The requested resource was not found")
    _, port = _own_host(request)
    location = f"http://localhost:{port}/_sandbox/cdn/{request.params['media_id']}"
    return HttpResponse(307, [("Location", location)], b"")


@route("GET", r"/_sandbox/cdn/(?P<media_id>\d+)")
def twilio_media_cdn(sandbox: ProviderSandbox, request: SandboxRequest) -> HttpResponse:
    """Twilio's CDN: a request carrying the account's credentials here would be a leak, so it is refused."""
    if request.header("Authorization"):
        return json_response(400, {"message": "credentials must not be sent to the media CDN"})
    media = _stored_media(sandbox, request.params["media_id"])
    if media is None:
        return json_response(404, {"message": "no such media"})
    return _media_bytes(media)


DEFAULT_ROUTES: tuple[SandboxRoute, ...] = (
    twilio_fetch_account,
    twilio_list_numbers,
    twilio_send_message,
    sandbox_upload_media,
    meta_get_media,  # before meta_get_phone_number: same path shape, falls back to it for unknown ids
    meta_download_media,
    twilio_media,
    twilio_media_cdn,
    meta_get_phone_number,
    meta_send_message,
)


def default_sandbox() -> ProviderSandbox:
    return ProviderSandbox(routes=list(DEFAULT_ROUTES))
