"""The provider sandbox answers health checks like Twilio and Meta do, rejects revoked credentials, and follows a
Meta send with signed status notifications."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.apigw import HttpRequest, HttpResponse
from local.http_gateway import LocalHttpServer, serve_in_thread
from local.sandbox import ProviderSandbox, default_sandbox
from tests.meta_support import spec_schema_errors

ACCOUNT = "AC" + "1" * 32


def basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def call(
    sandbox: ProviderSandbox,
    path: str,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> tuple[int, Any]:
    response: HttpResponse = sandbox.handle(
        HttpRequest(method, path, query_string=query, headers=headers or [], body=body))
    return response.status, json.loads(response.body) if response.body else None


@pytest.fixture
def sandbox() -> ProviderSandbox:
    return default_sandbox()


def test_twilio_account_fetch(sandbox: ProviderSandbox) -> None:
    status, body = call(sandbox, f"/2010-04-01/Accounts/{ACCOUNT}.json", headers=[basic(ACCOUNT, "token")])

    assert status == 200
    assert body["sid"] == ACCOUNT
    assert body["status"] == "active"
    assert body["type"] == "Full"
    assert body["friendly_name"]


def test_twilio_number_lookup(sandbox: ProviderSandbox) -> None:
    status, body = call(
        sandbox,
        f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json",
        query="PhoneNumber=%2B14155238886",
        headers=[basic(ACCOUNT, "token")],
    )

    assert status == 200
    (number,) = body["incoming_phone_numbers"]
    assert number["phone_number"] == "+14155238886"
    assert number["sid"].startswith("PN") and len(number["sid"]) == 34
    assert number["capabilities"]["sms"] is True
    assert body["page_size"] == 50 and body["next_page_uri"] is None


@pytest.mark.parametrize("headers", [[], [basic(ACCOUNT, "revoked-token")], [("Authorization", "Bearer x")]])
def test_twilio_rejects_missing_or_revoked_credentials(
    sandbox: ProviderSandbox, headers: list[tuple[str, str]]
) -> None:
    status, body = call(sandbox, f"/2010-04-01/Accounts/{ACCOUNT}.json", headers=headers)

    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_meta_phone_number_returns_requested_fields_and_id(sandbox: ProviderSandbox) -> None:
    status, body = call(
        sandbox,
        "/v25.0/106540352242922",
        query="fields=verified_name,quality_rating,throughput",
        headers=[("Authorization", "Bearer EAAG-token")],
    )

    assert status == 200
    assert body == {
        "id": "106540352242922",
        "verified_name": "Sandbox Business",
        "quality_rating": "GREEN",
        "throughput": {"level": "STANDARD"},
    }


def test_meta_phone_number_default_fields(sandbox: ProviderSandbox) -> None:
    _, body = call(sandbox, "/v25.0/106540352242922", headers=[("Authorization", "Bearer EAAG-token")])

    assert set(body) == {"id", "display_phone_number", "verified_name", "quality_rating"}


@pytest.mark.parametrize("headers", [[], [("Authorization", "Bearer EAAG-revoked")]])
def test_meta_rejects_missing_or_revoked_tokens(sandbox: ProviderSandbox, headers: list[tuple[str, str]]) -> None:
    status, body = call(sandbox, "/v25.0/106540352242922", headers=headers)

    assert status == 401
    assert body["error"]["type"] == "OAuthException"
    assert body["error"]["code"] == 190
    assert body["error"]["message"] and body["error"]["fbtrace_id"]


def test_requests_are_logged_and_can_be_cleared(sandbox: ProviderSandbox) -> None:
    call(sandbox, f"/2010-04-01/Accounts/{ACCOUNT}.json", headers=[basic(ACCOUNT, "token")])
    call(sandbox, "/unknown")

    status, body = call(sandbox, "/_sandbox/requests")
    cleared, _ = call(sandbox, "/_sandbox/requests", method="DELETE")

    assert status == 200
    assert [r["path"] for r in body["requests"]] == [f"/2010-04-01/Accounts/{ACCOUNT}.json", "/unknown"]
    assert body["requests"][0]["headers"]["Authorization"].startswith("Basic ")
    assert cleared == 204
    assert sandbox.requests() == []


def test_unknown_route_is_404(sandbox: ProviderSandbox) -> None:
    assert call(sandbox, "/nope")[0] == 404


# ---------------------------------------------------------------------------------------------- Meta statuses
class Receiver:
    """An HTTP server (the local stack's own) that records what is posted to it."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.arrived = threading.Condition()
        self.server = LocalHttpServer(("127.0.0.1", 0), self.receive)
        serve_in_thread(self.server, "receiver")

    def receive(self, request: HttpRequest) -> HttpResponse:
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()
        return HttpResponse(200, [("content-type", "application/json")], b"{}")

    def wait_for(self, count: int) -> list[HttpRequest]:
        with self.arrived:  # the timeout only guards against a hang: the sandbox posts 3 in ~0.2 s
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=120), self.requests
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def meta_send(sandbox: ProviderSandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    return call(sandbox, "/v25.0/106540352242922/messages", method="POST", body=json.dumps(payload).encode(),
                headers=[("Authorization", "Bearer EAAG-token"), ("Content-Type", "application/json")])


def test_a_meta_send_is_followed_by_signed_sent_delivered_read_notifications(
    sandbox: ProviderSandbox, receiver: Receiver
) -> None:
    secrets_asked: list[str] = []
    sandbox.meta_webhook_url = f"http://127.0.0.1:{receiver.server.port}/webhooks/meta"
    sandbox.meta_app_secret = lambda number: secrets_asked.append(number) or "the-apps-secret-0123"

    status, answer = meta_send(sandbox, {"messaging_product": "whatsapp", "recipient_type": "individual",
                                         "to": "+16505551234", "type": "text", "text": {"body": "Hi"}})
    posted = receiver.wait_for(3)

    assert status == 200
    wamid = answer["messages"][0]["id"]
    assert secrets_asked == ["106540352242922"]
    assert [(r.method, r.path) for r in posted] == [("POST", "/webhooks/meta")] * 3
    statuses = []
    for request in posted:
        headers = {k.lower(): v for k, v in request.headers}
        expected = "sha256=" + hmac.new(b"the-apps-secret-0123", request.body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        assert headers["content-type"] == "application/json"
        notification = json.loads(request.body)
        assert spec_schema_errors(notification, "WebhookPayload") == []
        [entry] = notification["entry"]
        [change] = entry["changes"]
        assert change["field"] == "messages"
        assert change["value"]["metadata"]["phone_number_id"] == "106540352242922"
        [item] = change["value"]["statuses"]
        assert (item["id"], item["recipient_id"]) == (wamid, "16505551234")
        assert item["timestamp"].isdigit()
        statuses.append(item)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert all(s["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service"}
               for s in statuses[:2]) and "pricing" not in statuses[2]


def test_no_meta_notifications_without_a_secret_for_the_number_nor_for_read_receipts(
    sandbox: ProviderSandbox, receiver: Receiver
) -> None:
    asked = threading.Event()
    sandbox.meta_webhook_url = f"http://127.0.0.1:{receiver.server.port}/webhooks/meta"
    sandbox.meta_app_secret = lambda number: asked.set() or None

    sent, _ = meta_send(sandbox, {"messaging_product": "whatsapp", "to": "+16505551234", "type": "text",
                                  "text": {"body": "Hi"}})
    read, _ = meta_send(sandbox, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x"})

    assert (sent, read) == (200, 200)
    assert asked.wait(120)  # asked once, for the text
    sandbox.meta_app_secret = lambda number: "the-apps-secret-0123"
    meta_send(sandbox, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x"})
    _, marker = meta_send(sandbox, {"messaging_product": "whatsapp", "to": "+16505551234", "type": "text",
                                    "text": {"body": "now with a secret"}})
    posted = receiver.wait_for(3)
    # all three are the last text's: none came for the secret-less send, none for read receipts
    ids = {json.loads(r.body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] for r in posted}
    assert ids == {marker["messages"][0]["id"]}
