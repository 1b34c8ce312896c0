"""channels_api in-process against moto provisioned from template.yaml."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

TWILIO = {
    "provider": "twilio",
    "name": "Main",
    "phone_number": "+14155238886",
    "account_sid": "AC" + "0123456789abcdef" * 2,
    "auth_token": "twilio-auth-token-0001",
}
META = {
    "provider": "meta",
    "name": "Meta",
    "phone_number_id": "106540352242922",
    "business_account_id": "102290129340398",
    "display_phone_number": "+15550783881",
    "access_token": "EAAG-meta-access-token-0001",
    "app_secret": "meta-app-secret-0001",
}
SECRETS = ("twilio-auth-token-0001", "EAAG-meta-access-token-0001", "meta-app-secret-0001")


@pytest.fixture
def call(invoke: Any, api_event: Any, claims: Any) -> Any:
    def _call(method: str, path: str, body: Any = None, **claim_args: Any) -> tuple[int, Any]:
        event = api_event(
            method, path, json=body, claims=claims(**claim_args) if claim_args != {"none": True} else None
        )
        response = invoke("ChannelsApiFunction", event)
        text = response.get("body") or ""
        return response["statusCode"], json.loads(text) if text else None

    return _call


def _no_secrets(payload: Any) -> None:
    text = json.dumps(payload)
    for secret in SECRETS:
        assert secret not in text


def test_create_twilio_and_meta_channels_without_leaking_secrets(call: Any, aws: Any) -> None:
    status, twilio = call("POST", "/v1/channels", TWILIO)
    assert status == 201, twilio
    assert twilio["webhook_url"] == "https://gateway.example.test/webhooks/twilio"
    assert twilio["status_callback_url"] == "https://gateway.example.test/webhooks/twilio/status"
    assert twilio["status"] == "active" and twilio["tenant_id"] == "acme"
    assert twilio["credentials"] == {"auth_token": "••••0001"}
    status, meta = call("POST", "/v1/channels", META)
    assert status == 201, meta
    assert meta["webhook_url"] == "https://gateway.example.test/webhooks/meta"
    assert meta["verify_token"] and meta["webhook_verified_at"] is None
    assert meta["phone_number_id"] == META["phone_number_id"]
    _no_secrets([twilio, meta])
    status, listed = call("GET", "/v1/channels")
    assert status == 200 and {c["id"] for c in listed["items"]} == {twilio["id"], meta["id"]}
    _no_secrets(listed)


def test_credentials_are_stored_as_kms_ciphertext_bound_to_tenant_and_channel(call: Any, aws: Any) -> None:
    _, channel = call("POST", "/v1/channels", TWILIO)
    table = aws.ref("ChannelsTable")
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": f"CHANNEL#{channel['id']}"}}
    )["Item"]
    raw = json.dumps(item)
    for secret in SECRETS:
        assert secret not in raw
    import base64

    blob = base64.b64decode(item["credentials_ciphertext"]["S"])
    kms = boto3.client("kms")
    plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant_id": "acme", "channel_id": channel["id"]})
    assert json.loads(plain["Plaintext"]) == {"auth_token": TWILIO["auth_token"]}
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant_id": "evil", "channel_id": channel["id"]})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone_number": "4155238886"}, "phone_number"),
        ({"phone_number": "+04155238886"}, "phone_number"),
        ({"account_sid": "XX123"}, "account_sid"),
        ({"auth_token": ""}, "auth_token"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_twilio_fields_are_422_naming_the_field(call: Any, aws: Any, change: dict, field: str) -> None:
    status, body = call("POST", "/v1/channels", {**TWILIO, **change})
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert body["error"]["message"].startswith(field), body


def test_meta_without_app_secret_and_no_global_secret_is_422(call: Any, aws: Any) -> None:
    status, body = call("POST", "/v1/channels", {k: v for k, v in META.items() if k != "app_secret"})
    assert status == 422 and "app_secret" in body["error"]["message"]


def test_meta_without_app_secret_is_fine_when_the_deployment_has_one(
    call: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_APP_SECRET", "global-app-secret")
    status, body = call("POST", "/v1/channels", {k: v for k, v in META.items() if k != "app_secret"})
    assert status == 201, body
    assert "app_secret" not in body["credentials"]


def test_the_same_number_is_unique_across_tenants(call: Any, aws: Any) -> None:
    assert call("POST", "/v1/channels", TWILIO)[0] == 201
    status, body = call("POST", "/v1/channels", TWILIO, tenant_id="globex")
    assert status == 409 and body["error"]["code"] == "channel_exists"
    assert call("POST", "/v1/channels", META)[0] == 201
    assert call("POST", "/v1/channels", {**META, "display_phone_number": "+15550000000"}, tenant_id="globex")[0] == 409


def test_concurrent_connects_of_one_number_give_one_channel(call: Any, aws: Any) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda t: call("POST", "/v1/channels", TWILIO, tenant_id=t)[0], [f"t{i}" for i in range(6)])
        )
    assert sorted(statuses) == [201] + [409] * 5


def test_disable_releases_the_number_and_hides_nothing(call: Any, aws: Any) -> None:
    _, channel = call("POST", "/v1/channels", TWILIO)
    status, _ = call("DELETE", f"/v1/channels/{channel['id']}")
    assert status == 204
    assert call("GET", f"/v1/channels/{channel['id']}")[1]["status"] == "disabled"
    assert call("POST", "/v1/channels", TWILIO, tenant_id="globex")[0] == 201
    # Re-enabling the old channel now collides with the new owner.
    status, body = call("PATCH", f"/v1/channels/{channel['id']}", {"status": "active"})
    assert status == 409 and body["error"]["code"] == "channel_exists"


def test_patch_rotates_credentials_and_sets_auto_reply(call: Any, aws: Any) -> None:
    _, channel = call("POST", "/v1/channels", TWILIO)
    auto_reply = {"mode": "on", "rules": [{"keywords": ["price"], "reply": "From $10"}], "fallback": None}
    status, body = call(
        "PATCH",
        f"/v1/channels/{channel['id']}",
        {"name": "Sales", "auth_token": "rotated-token-9999", "auto_reply": auto_reply},
    )
    assert status == 200, body
    assert body["name"] == "Sales" and body["credentials"] == {"auth_token": "••••9999"}
    assert body["auto_reply"]["mode"] == "on" and body["auto_reply"]["operator_lock_minutes"] == 30
    assert "rotated-token-9999" not in json.dumps(body)
    status, body = call("PATCH", f"/v1/channels/{channel['id']}", {"access_token": "x"})
    assert status == 422 and "access_token" in body["error"]["message"]
    status, body = call("PATCH", f"/v1/channels/{channel['id']}", {"auto_reply": {"mode": "loud"}})
    assert status == 422 and "auto_reply.mode" in body["error"]["message"]


def test_another_instance_rotating_one_secret_keeps_the_others(
    call: Any, aws: Any, api_event: Any, claims: Any
) -> None:
    """A cold instance has no decrypted credentials in memory: it decrypts the stored ones with KMS (which its role
    must allow) to keep the app secret while the access token changes."""
    from local.runtime import FunctionRuntime

    _, channel = call("POST", "/v1/channels", META)
    event = api_event("PATCH", f"/v1/channels/{channel['id']}", json={"access_token": "EAAG-rotated-token-7777"},
                      claims=claims())

    response = FunctionRuntime(aws).invoke("ChannelsApiFunction", event)  # another execution environment

    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["credentials"] == {"access_token": "••••7777", "app_secret": "••••0001"}
    item = boto3.client("dynamodb").get_item(
        TableName=aws.ref("ChannelsTable"), Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": f"CHANNEL#{channel['id']}"}}
    )["Item"]
    import base64

    plain = boto3.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(item["credentials_ciphertext"]["S"]),
        EncryptionContext={"tenant_id": "acme", "channel_id": channel["id"]},
    )["Plaintext"]
    assert json.loads(plain) == {"access_token": "EAAG-rotated-token-7777", "app_secret": META["app_secret"]}


def test_tenant_b_never_sees_tenant_a_channels(call: Any, aws: Any) -> None:
    _, channel = call("POST", "/v1/channels", TWILIO)
    for method, path, body in [
        ("GET", f"/v1/channels/{channel['id']}", None),
        ("PATCH", f"/v1/channels/{channel['id']}", {"name": "mine"}),
        ("DELETE", f"/v1/channels/{channel['id']}", None),
        ("POST", f"/v1/channels/{channel['id']}/check", None),
    ]:
        status, answer = call(method, path, body, tenant_id="globex")
        assert status == 404 and answer["error"]["code"] == "channel_not_found", (method, path, answer)
    assert call("GET", "/v1/channels", tenant_id="globex")[1] == {"items": []}
    assert call("GET", f"/v1/channels/{channel['id']}")[0] == 200


def test_identity_rules(call: Any, aws: Any) -> None:
    assert call("GET", "/v1/channels", admin=False)[0] == 403
    assert call("GET", "/v1/channels", tenant_id=None)[0] == 403
    assert call("GET", "/v1/channels", none=True)[0] == 401
    # Tenant ids are taken as they are or refused: " acme" is not acme, "acme#send" cannot reach into keys.
    call("POST", "/v1/channels", TWILIO)
    for odd in (" acme", "acme ", "Acme", "acme#send"):
        status, answer = call("GET", "/v1/channels", tenant_id=odd)
        assert status == 403 and answer["error"]["code"] == "forbidden", (odd, answer)
        assert "not a valid tenant id" in answer["error"]["message"]


def test_malformed_json_is_a_clear_400(invoke: Any, api_event: Any, claims: Any, aws: Any) -> None:
    event = api_event(
        "POST", "/v1/channels", body=b"{not json", headers={"content-type": "application/json"}, claims=claims()
    )
    response = invoke("ChannelsApiFunction", event)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_json"
