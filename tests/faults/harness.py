"""What the fault-matrix tests drive: a misbehaving provider server and the gateway's handlers, in-process.

``ChaosServer`` is the local provider sandbox (``local.sandbox``: Twilio and Meta sends, health checks, media)
behind a front that misbehaves on request: an HTTP 500 or 503, an answer slower than the client's timeout, a
connection reset right after the request was read, a body cut off mid-stream by a reset, a body that stalls.
It records every request it receives, so tests count exactly what reached "the provider".

``Gateway`` calls the handlers like API Gateway would (``invoke`` + ``api_event`` from tests/integration):
channels through the admin API, signed Twilio and Meta webhooks, sends, the inbox.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.config import get_settings
from gateway.domain import ids
from twilio.request_validator import RequestValidator

from local.apigw import HttpRequest
from local.provision import Resources
from local.sandbox import ProviderSandbox, default_sandbox
from local.testing import ApiEvents
from tests.faults.faultlib import Tables
from tests.meta_support import change_value, meta_bytes, notification, sign, text_message

ACCOUNT = "AC" + "fa017" * 6 + "ab"
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TWILIO_NUMBER = "+14155238886"
PHONE_NUMBER_ID = "106540352242922"
META_TOKEN = "EAAG-meta-token-0123456789"
APP_SECRET = "meta-app-secret-0123456789"
CONTACT = "+14155550100"
CONTACT_WA_ID = CONTACT[1:]
SLOW_SECONDS = 4.0  # well past the provider timeout the fixtures set (1.5 s)

Invoke = Callable[[str, dict[str, Any]], Any]


# ---------------------------------------------------------------------------------------------- chaos server
@dataclass
class Rule:
    method: str
    pattern: re.Pattern[str]
    behaviours: list[str]  # consumed one per matching request; "always:<b>" repeats forever


@dataclass
class ChaosServer:
    """The sandbox behind a front that misbehaves as told. Behaviours: ``ok``, ``500``, ``503``, ``slow``
    (answers after SLOW_SECONDS), ``reset`` (RST right after reading the request), ``cut`` (headers and half the
    body, then RST), ``stall`` (headers and half the body, then silence for SLOW_SECONDS)."""

    sandbox: ProviderSandbox = field(default_factory=default_sandbox)
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, behaviour)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def on(self, method: str, path_regex: str, *behaviours: str) -> None:
        """The next matching requests get ``behaviours`` in order, then ``ok``."""
        with self._lock:
            self.rules.append(Rule(method.upper(), re.compile(path_regex), list(behaviours)))

    def always(self, method: str, path_regex: str, behaviour: str) -> None:
        self.on(method, path_regex, f"always:{behaviour}")

    def heal(self) -> None:
        with self._lock:
            self.rules.clear()

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[tuple[str, str, str]]:
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            return [r for r in self.log if (method is None or r[0] == method) and (pattern is None or
                                                                                    pattern.search(r[1]))]

    def sends(self) -> list[tuple[str, str, str]]:
        return self.requests("POST", r"(/Messages\.json|/messages)$")

    def _behaviour(self, method: str, path: str) -> str:
        with self._lock:
            for rule in self.rules:
                if rule.method == method and rule.pattern.search(path) and rule.behaviours:
                    head = rule.behaviours[0]
                    if head.startswith("always:"):
                        return head.removeprefix("always:")
                    return rule.behaviours.pop(0)
        return "ok"

    def start(self) -> None:
        chaos = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                behaviour = chaos._behaviour(self.command, path)
                with chaos._lock:
                    chaos.log.append((self.command, path, behaviour))
                if behaviour == "reset":
                    return self._reset()
                if behaviour in ("500", "503"):
                    return self._answer(int(behaviour), [("Content-Type", "text/html")],
                                        f"<html><body>{behaviour}</body></html>".encode())
                if behaviour == "slow":
                    time.sleep(SLOW_SECONDS)
                request = HttpRequest(self.command, path, query, list(self.headers.items()), body)
                response = chaos.sandbox.handle(request)
                if behaviour in ("cut", "stall") and len(response.body) > 1:
                    return self._partial(response.status, response.headers, response.body, behaviour)
                return self._answer(response.status, response.headers, response.body)

            do_GET = do_POST = _serve

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in ("content-length", "connection"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _partial(self, status: int, headers: list[tuple[str, str]], body: bytes, how: str) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in ("content-length", "connection"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if how == "stall":
                    time.sleep(SLOW_SECONDS)
                self._reset()

            def _reset(self) -> None:
                """Close with an RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def upload_media(self, content: bytes, mime_type: str, **query: str) -> dict[str, Any]:
        """Media the providers will serve (POST /_sandbox/media through this front, so URLs point here)."""
        import requests

        answer = requests.post(f"{self.url}/_sandbox/media", data=content, params=query,
                               headers={"Content-Type": mime_type}, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]


def closed_port_url() -> str:
    """A URL nothing listens on: connections are refused (nothing ever leaves the client)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------- the gateway
def body_of(response: dict[str, Any]) -> Any:
    try:
        return json.loads(response.get("body") or "null")
    except ValueError:
        return response.get("body")


def new_sid(prefix: str = "SM") -> str:
    return prefix + ids.new_id("x")[2:].ljust(32, "0")[:32]


@dataclass
class Gateway:
    aws: Resources
    invoke: Invoke
    api_event: ApiEvents
    claims: Callable[..., dict[str, Any]]
    chaos: ChaosServer

    @property
    def base_url(self) -> str:
        return get_settings().public_base_url

    def tables(self) -> Tables:
        return Tables.read({name: self.aws.ref(f"{name.capitalize()}Table")
                            for name in ("channels", "conversations", "messages", "idempotency")})

    # ------------------------------------------------------------------ /v1
    def call(self, function: str, method: str, path: str, *, tenant: str = "acme", admin: bool = True,
             json: Any = None, headers: dict[str, str] | None = None,
             query: dict[str, str] | None = None) -> tuple[int, Any]:
        event = self.api_event(method, path, json=json, headers=headers or {}, query=query,
                               claims=self.claims(tenant_id=tenant, admin=admin))
        response = self.invoke(function, event)
        return int(response["statusCode"]), body_of(response)

    def channels(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        return self.call("ChannelsApiFunction", method, path, json=json)

    def twilio_channel(self, auto_reply: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = self.channels("POST", "/v1/channels", {
            "provider": "twilio", "name": "Main", "phone_number": TWILIO_NUMBER, "account_sid": ACCOUNT,
            "auth_token": TWILIO_TOKEN, "messaging_service_sid": None, "location_id": None})
        assert status == 201, body
        return self._auto_reply(body, auto_reply)

    def meta_channel(self, auto_reply: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = self.channels("POST", "/v1/channels", {
            "provider": "meta", "name": "Meta", "phone_number_id": PHONE_NUMBER_ID, "business_account_id": "1234",
            "display_phone_number": "+15550783881", "access_token": META_TOKEN, "app_secret": APP_SECRET,
            "verify_token": "verify-token-0123", "location_id": None})
        assert status == 201, body
        return self._auto_reply(body, auto_reply)

    def _auto_reply(self, channel: dict[str, Any], auto_reply: dict[str, Any] | None) -> dict[str, Any]:
        if auto_reply is None:
            return channel
        status, body = self.channels("PATCH", f"/v1/channels/{channel['id']}", {"auto_reply": auto_reply})
        assert status == 200, body
        return dict(body)

    def send(self, conversation_id: str, body: dict[str, Any], *, key: str | None = None) -> tuple[int, Any]:
        return self.call("SendMessageFunction", "POST", f"/v1/conversations/{conversation_id}/messages",
                         json=body, admin=False, headers={"Idempotency-Key": key} if key else None)

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        status, body = self.call("InboxApiFunction", "GET", f"/v1/conversations/{conversation_id}/messages",
                                 query={"limit": "100"})
        assert status == 200, body
        return list(body["items"])

    @staticmethod
    def conversation_id(channel: dict[str, Any], contact: str = CONTACT) -> str:
        return ids.conversation_id(channel["tenant_id"], channel["id"], contact)

    # ------------------------------------------------------------------ Twilio webhooks
    def twilio_form(self, message_sid: str | None = None, **extra: str) -> dict[str, str]:
        sid = message_sid or new_sid()
        return {
            "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": "Zoë", "MessageType": "text", "SmsSid": sid,
            "WaId": CONTACT_WA_ID, "SmsStatus": "received", "Body": "Hello there", "To": f"whatsapp:{TWILIO_NUMBER}",
            "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": ACCOUNT,
            "From": f"whatsapp:{CONTACT}", "ApiVersion": "2010-04-01", **extra,
        }

    def twilio_post(self, path: str, params: dict[str, str], function: str) -> dict[str, Any]:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(self.base_url + path, params)
        event = self.api_event("POST", path, form=params,
                               headers={"user-agent": "TwilioProxy/1.1", "X-Twilio-Signature": signature})
        return self.invoke(function, event)  # type: ignore[no-any-return]

    def twilio_inbound(self, params: dict[str, str]) -> dict[str, Any]:
        return self.twilio_post("/webhooks/twilio", params, "WebhookTwilioFunction")

    def twilio_fallback(self, params: dict[str, str]) -> dict[str, Any]:
        """What Twilio sends to the Fallback URL (set to the same webhook URL) after the primary answered 5xx:
        the same parameters plus ErrorCode and ErrorUrl, signed for the URL it calls."""
        return self.twilio_inbound({**params, "ErrorCode": "11200", "ErrorUrl": self.base_url + "/webhooks/twilio"})

    def twilio_status(self, message_sid: str, status: str) -> dict[str, Any]:
        params = {"MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": ACCOUNT, "From": f"whatsapp:{TWILIO_NUMBER}", "To": f"whatsapp:{CONTACT}",
                  "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01"}
        return self.twilio_post("/webhooks/twilio/status", params, "StatusCallbackFunction")

    # ------------------------------------------------------------------ Meta webhooks
    def meta_post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = meta_bytes(payload)
        headers = {"content-type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)}
        event = self.api_event("POST", "/webhooks/meta", body=body, headers=headers)
        return self.invoke("WebhookMetaFunction", event)  # type: ignore[no-any-return]

    def meta_messages(self, *wamids: str) -> dict[str, Any]:
        return notification(change_value(PHONE_NUMBER_ID, messages=[text_message(w, f"text {w}", CONTACT_WA_ID)
                                                                for w in wamids]))

    def meta_statuses(self, *items: tuple[str, str]) -> dict[str, Any]:
        statuses = [{"id": w, "status": s, "timestamp": "1750263773", "recipient_id": CONTACT_WA_ID} for w, s in items]
        return notification(change_value(PHONE_NUMBER_ID, statuses=statuses))

    def meta_verify(self, token: str, challenge: str = "1158201444") -> dict[str, Any]:
        event = self.api_event("GET", "/webhooks/meta", query={"hub.mode": "subscribe", "hub.verify_token": token,
                                                                "hub.challenge": challenge})
        return self.invoke("WebhookMetaFunction", event)  # type: ignore[no-any-return]
