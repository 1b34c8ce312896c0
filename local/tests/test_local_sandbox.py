"""The provider sandbox answers health checks like Twilio and Meta do, and rejects revoked credentials."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.apigw import HttpRequest, HttpResponse
from local.sandbox import ProviderSandbox, default_sandbox

ACCOUNT = "AC" + "1" * 32


def basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def call(
    sandbox: ProviderSandbox,
    path: str,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
) -> tuple[int, Any]:
    response: HttpResponse = sandbox.handle(HttpRequest(method, path, query_string=query, headers=headers or []))
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
