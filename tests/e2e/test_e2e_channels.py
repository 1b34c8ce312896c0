"""Channels over real HTTP against the local stack (DESIGN §2 Channels, Identity): JWTs from the local Cognito,
credentials checked against the provider sandbox."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest

from local.testing import LocalStackClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

SECRET_FIELDS = ("auth_token", "access_token", "app_secret")


def unique_tenant() -> str:
    return f"tenant-{secrets.token_hex(4)}"


def twilio_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "provider": "twilio",
        "name": "Main",
        # A fresh number per test: a number is connected to at most one channel across tenants.
        "phone_number": "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0"),
        "account_sid": "AC" + secrets.token_hex(16),
        "auth_token": "twilio-secret-" + secrets.token_hex(8),
        "messaging_service_sid": None,
        "location_id": None,
    }
    return {**body, **overrides}


def meta_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "provider": "meta",
        "name": "Main",
        "phone_number_id": str(10**14 + secrets.randbelow(10**14)),
        "business_account_id": str(10**14 + secrets.randbelow(10**14)),
        "display_phone_number": "+15550783881",
        "access_token": "EAAG-meta-secret-" + secrets.token_hex(8),
        "app_secret": "app-secret-" + secrets.token_hex(8),
        "verify_token": None,
        "location_id": None,
    }
    return {**body, **overrides}


def assert_no_secrets(text: str, body: dict[str, Any]) -> None:
    """No secret sent in ``body`` appears in the response text (a redacted hint of its last chars may)."""
    for field in SECRET_FIELDS:
        value = body.get(field)
        if value:
            assert value not in text, f"{field} leaked"


@pytest.fixture
def admin(local_stack: LocalStackClient) -> tuple[str, str]:
    tenant = unique_tenant()
    return tenant, local_stack.token(tenant_id=tenant, admin=True)


def test_create_twilio_channel(local_stack: LocalStackClient, admin: tuple[str, str]) -> None:
    tenant, token = admin
    body = twilio_body()

    response = local_stack.request("POST", "/v1/channels", token=token, json=body)

    assert response.status_code == 201, response.text
    channel = response.json()
    assert channel["id"]
    assert channel["tenant_id"] == tenant  # from the JWT, never from the body
    assert channel["provider"] == "twilio"
    assert channel["phone_number"] == body["phone_number"]
    assert channel["status"] == "active"
    assert channel["location_id"] is None
    assert channel["created_at"].endswith("Z")
    # PUBLIC_BASE_URL is the local gateway, so webhook_url is the URL Twilio would sign.
    assert channel["webhook_url"].startswith(local_stack.base_url + "/webhooks/twilio")
    assert channel["status_callback_url"].startswith(local_stack.base_url)
    for field in SECRET_FIELDS:
        assert field not in channel
    assert_no_secrets(response.text, body)


def test_create_meta_channel_generates_verify_token(local_stack: LocalStackClient, admin: tuple[str, str]) -> None:
    tenant, token = admin
    body = meta_body()

    response = local_stack.request("POST", "/v1/channels", token=token, json=body)

    assert response.status_code == 201, response.text
    channel = response.json()
    assert channel["tenant_id"] == tenant
    assert channel["provider"] == "meta"
    assert channel["phone_number_id"] == body["phone_number_id"]
    assert channel["business_account_id"] == body["business_account_id"]
    assert channel["verify_token"]  # generated when absent
    assert channel["webhook_verified_at"] is None
    assert channel["webhook_url"].startswith(local_stack.base_url + "/webhooks/meta")
    for field in SECRET_FIELDS:
        assert field not in channel
    assert_no_secrets(response.text, body)


def test_channels_are_listed_and_read_back_without_secrets(
    local_stack: LocalStackClient, admin: tuple[str, str]
) -> None:
    _, token = admin
    body = twilio_body()
    created = local_stack.request("POST", "/v1/channels", token=token, json=body).json()

    listed = local_stack.request("GET", "/v1/channels", token=token)
    fetched = local_stack.request("GET", f"/v1/channels/{created['id']}", token=token)

    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [created["id"]]
    assert fetched.status_code == 200
    assert fetched.json()["id"] == created["id"]
    assert_no_secrets(listed.text + fetched.text, body)


def test_same_twilio_number_in_another_tenant_conflicts(local_stack: LocalStackClient) -> None:
    body = twilio_body()
    first = local_stack.request("POST", "/v1/channels", token=local_stack.token(unique_tenant()), json=body)

    second = local_stack.request("POST", "/v1/channels", token=local_stack.token(unique_tenant()), json=body)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "channel_exists"


def test_another_tenants_channel_is_not_found(local_stack: LocalStackClient, admin: tuple[str, str]) -> None:
    _, token = admin
    created = local_stack.request("POST", "/v1/channels", token=token, json=twilio_body()).json()

    response = local_stack.request("GET", f"/v1/channels/{created['id']}", token=local_stack.token(unique_tenant()))

    assert response.status_code == 404


def test_invalid_phone_number_is_422_naming_the_field(local_stack: LocalStackClient, admin: tuple[str, str]) -> None:
    response = local_stack.request("POST", "/v1/channels", token=admin[1], json=twilio_body(phone_number="0123"))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "phone_number" in error["message"]


def test_non_admin_cannot_manage_channels(local_stack: LocalStackClient) -> None:
    token = local_stack.token(unique_tenant(), admin=False)

    response = local_stack.request("POST", "/v1/channels", token=token, json=twilio_body())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_token_without_tenant_is_403(local_stack: LocalStackClient) -> None:
    response = local_stack.request("GET", "/v1/channels", token=local_stack.token(tenant_id=None, admin=True))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("tenant", [" acme", "Acme", "acme#send"])
def test_a_real_token_whose_tenant_id_is_not_one_is_403(local_stack: LocalStackClient, tenant: str) -> None:
    # The pool stores any 1 to 64 characters in custom:tenant_id: the gateway is what refuses them.
    response = local_stack.request("GET", "/v1/channels", token=local_stack.token(tenant_id=tenant, admin=True))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "not a valid tenant id" in response.json()["error"]["message"]


def test_twilio_check_calls_the_sandbox_with_the_channel_credentials(
    local_stack: LocalStackClient, admin: tuple[str, str]
) -> None:
    _, token = admin
    body = twilio_body()
    created = local_stack.request("POST", "/v1/channels", token=token, json=body).json()

    response = local_stack.request("POST", f"/v1/channels/{created['id']}/check", token=token)

    assert response.status_code == 200, response.text
    assert body["auth_token"] not in response.text
    account_calls = [r for r in local_stack.sandbox_requests() if r["path"].endswith(f"{body['account_sid']}.json")]
    assert account_calls, "the check did not reach the sandbox"
    expected = "Basic " + base64.b64encode(f"{body['account_sid']}:{body['auth_token']}".encode()).decode()
    assert account_calls[-1]["headers"].get("Authorization") == expected


def test_meta_check_reports_phone_number_health(local_stack: LocalStackClient, admin: tuple[str, str]) -> None:
    _, token = admin
    created = local_stack.request("POST", "/v1/channels", token=token, json=meta_body()).json()

    response = local_stack.request("POST", f"/v1/channels/{created['id']}/check", token=token)

    assert response.status_code == 200, response.text
    assert "GREEN" in response.text  # quality rating from the sandbox's phone number fields


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: twilio_body(auth_token="revoked-" + secrets.token_hex(4)), id="twilio"),
        pytest.param(lambda: meta_body(access_token="revoked-" + secrets.token_hex(4)), id="meta"),
    ],
)
def test_check_with_rejected_credentials_is_a_clear_error(
    local_stack: LocalStackClient, admin: tuple[str, str], body: Any
) -> None:
    _, token = admin
    created = local_stack.request("POST", "/v1/channels", token=token, json=body()).json()

    response = local_stack.request("POST", f"/v1/channels/{created['id']}/check", token=token)

    assert 400 <= response.status_code < 600
    assert response.json()["error"]["code"] == "credentials_rejected"
