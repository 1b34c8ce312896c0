"""Sending through the local stack over real HTTP (DESIGN §2 POST /v1/conversations/{id}/messages).

A contact writes first (a Twilio webhook signed by twilio-python's RequestValidator, or a Meta webhook signed
with the channel's app secret), the conversation appears in the inbox, and the frontend sends with a JWT from
the local Cognito. The provider sandbox stands in for Twilio and Meta and records what it received.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from twilio.request_validator import RequestValidator

from local.testing import LocalStackClient
from tests.meta_support import change_value, meta_bytes, notification, sign, text_message

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def contact() -> str:
    return "+1650" + str(secrets.randbelow(10**7)).rjust(7, "0")


def create_channel(stack: LocalStackClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.request("POST", "/v1/channels", token=token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def twilio_channel(stack: LocalStackClient, token: str) -> tuple[dict[str, Any], str]:
    auth_token = "twilio-secret-" + secrets.token_hex(8)
    channel = create_channel(stack, token, {
        "provider": "twilio", "name": "Main", "phone_number": "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0"),
        "account_sid": "AC" + secrets.token_hex(16), "auth_token": auth_token,
    })
    return channel, auth_token


def twilio_inbound(stack: LocalStackClient, channel: dict[str, Any], auth_token: str, sender: str) -> None:
    sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": channel["account_sid"],
        "From": f"whatsapp:{sender}", "To": f"whatsapp:{channel['phone_number']}", "Body": "Hi, is my order ready?",
        "NumMedia": "0", "NumSegments": "1", "ProfileName": "Zoë", "WaId": sender[1:], "SmsStatus": "received",
        "MessageType": "text", "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(auth_token).compute_signature(channel["webhook_url"], params)
    response = stack.request("POST", "/webhooks/twilio", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text


def meta_inbound(stack: LocalStackClient, channel: dict[str, Any], app_secret: str, sender: str) -> str:
    wamid = "wamid." + secrets.token_hex(16)
    body = meta_bytes(notification(change_value(channel["phone_number_id"],
                                                messages=[text_message(wamid, "Hola", sender=sender[1:])])))
    response = stack.request("POST", "/webhooks/meta", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, app_secret)})
    assert response.status_code == 200, response.text
    return wamid


def conversation_with(stack: LocalStackClient, token: str, phone: str) -> dict[str, Any]:
    response = stack.request("GET", "/v1/conversations", token=token, params={"limit": 100})
    assert response.status_code == 200, response.text
    [conversation] = [c for c in response.json()["items"] if c["contact"]["phone"] == phone]
    return dict(conversation)


def send(stack: LocalStackClient, token: str, conversation_id: str, body: dict[str, Any],
         key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return stack.request("POST", f"/v1/conversations/{conversation_id}/messages", token=token, json=body,
                         headers=headers)


def sandbox_sends(stack: LocalStackClient, path_end: str) -> list[dict[str, Any]]:
    return [r for r in stack.sandbox_requests() if r["method"] == "POST" and r["path"].endswith(path_end)]


def age_last_inbound(stack: LocalStackClient, tenant: str, conversation_id: str, hours: float) -> None:
    """Move the conversation's last inbound time into the past, directly in the stack's DynamoDB (moto)."""
    state = stack.state
    table = boto3.resource("dynamodb", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                           aws_access_key_id="testing", aws_secret_access_key="testing").Table(
        state["tables"]["ConversationsTable"])
    past = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    table.update_item(Key={"pk": f"TENANT#{tenant}", "sk": f"CONV#{conversation_id}"},
                      UpdateExpression="SET last_inbound_at = :t", ExpressionAttributeValues={":t": past})


# ---------------------------------------------------------------------------------------------- Twilio
def test_twilio_inbound_then_send_is_201_sent_and_other_tenants_get_404(local_stack: LocalStackClient) -> None:
    tenant = unique("tenant")
    admin = local_stack.token(tenant_id=tenant, admin=True)
    operator = local_stack.token(tenant_id=tenant, admin=False)
    channel, auth_token = twilio_channel(local_stack, admin)
    phone = contact()
    twilio_inbound(local_stack, channel, auth_token, phone)
    conversation = conversation_with(local_stack, operator, phone)

    response = send(local_stack, operator, conversation["id"], {"type": "text", "text": "Yes, it ships today."})

    assert response.status_code == 201, response.text
    message = response.json()
    assert message["status"] == "sent" and message["direction"] == "outbound"
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["provider_message_id"])
    assert message["sender"]["kind"] == "operator"
    [request] = [r for r in sandbox_sends(local_stack, "/Messages.json") if phone in r["body"].replace("%2B", "+")]
    assert f"/Accounts/{channel['account_sid']}/Messages.json" in request["path"]
    assert "StatusCallback=" + channel["status_callback_url"].replace(":", "%3A").replace("/", "%2F") in request["body"]

    listed = local_stack.request("GET", f"/v1/conversations/{conversation['id']}/messages", token=operator).json()
    assert listed["items"][0]["id"] == message["id"]
    after = local_stack.request("GET", f"/v1/conversations/{conversation['id']}", token=operator).json()
    assert after["operator_lock_until"] is not None

    intruder = local_stack.token(tenant_id=unique("tenant"), admin=True)
    response = send(local_stack, intruder, conversation["id"], {"type": "text", "text": "Hello"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_window_idempotency_and_provider_rejection_through_the_stack(local_stack: LocalStackClient) -> None:
    tenant = unique("tenant")
    admin = local_stack.token(tenant_id=tenant, admin=True)
    channel, auth_token = twilio_channel(local_stack, admin)
    phone = contact()
    twilio_inbound(local_stack, channel, auth_token, phone)
    conversation_id = conversation_with(local_stack, admin, phone)["id"]

    # Idempotency: same key and body → same message, one send; another body → 409.
    key = unique("key")
    first = send(local_stack, admin, conversation_id, {"type": "text", "text": "Once"}, key=key)
    again = send(local_stack, admin, conversation_id, {"type": "text", "text": "Once"}, key=key)
    other = send(local_stack, admin, conversation_id, {"type": "text", "text": "Twice?"}, key=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert sum("Body=Once" in r["body"] for r in sandbox_sends(local_stack, "/Messages.json")
               if f"/Accounts/{channel['account_sid']}/" in r["path"]) == 1

    # The provider refuses (the sandbox answers 63016 when asked to): 422 provider_rejected, stored failed.
    rejected = send(local_stack, admin, conversation_id, {"type": "text", "text": "sandbox-error:63016"})
    assert rejected.status_code == 422, rejected.text
    error = rejected.json()["error"]
    assert error["code"] == "provider_rejected"
    assert error["provider_error"]["code"] == "outside_customer_service_window"
    assert error["provider_error"]["provider_code"] == "63016"
    listed = local_stack.request("GET", f"/v1/conversations/{conversation_id}/messages", token=admin).json()
    failed = next(m for m in listed["items"] if m["id"] == error["message_id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "outside_customer_service_window"

    # Older than 24 h: free-form → 422 before anything is sent; a template still goes out.
    age_last_inbound(local_stack, tenant, conversation_id, hours=25)
    late = send(local_stack, admin, conversation_id, {"type": "text", "text": "Late"})
    assert late.status_code == 422 and late.json()["error"]["code"] == "outside_customer_service_window"
    template = {"type": "template", "template": {"content_sid": "HX" + secrets.token_hex(16), "variables": {"1": "7"}}}
    sent = send(local_stack, admin, conversation_id, template)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "sent" and sent.json()["type"] == "template"


# ---------------------------------------------------------------------------------------------- Meta
def test_meta_inbound_then_text_template_reaction_and_read(local_stack: LocalStackClient) -> None:
    tenant = unique("tenant")
    admin = local_stack.token(tenant_id=tenant, admin=True)
    app_secret = "app-secret-" + secrets.token_hex(8)
    channel = create_channel(local_stack, admin, {
        "provider": "meta", "name": "Main", "phone_number_id": str(10**14 + secrets.randbelow(10**14)),
        "business_account_id": str(10**14 + secrets.randbelow(10**14)), "display_phone_number": "+15550783881",
        "access_token": "EAAG-" + secrets.token_hex(8), "app_secret": app_secret,
    })
    phone = contact()
    wamid = meta_inbound(local_stack, channel, app_secret, phone)
    conversation_id = conversation_with(local_stack, admin, phone)["id"]

    text = send(local_stack, admin, conversation_id, {"type": "text", "text": "¡Hola!", "preview_url": False})
    template = send(local_stack, admin, conversation_id, {
        "type": "template", "template": {"name": "order_update", "language": "es_ES", "components": []}})
    reaction = send(local_stack, admin, conversation_id, {"type": "reaction", "message_id": wamid, "emoji": "👍"})
    read = send(local_stack, admin, conversation_id, {"type": "read", "message_id": wamid})

    for response in (text, template, reaction):
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "sent"
        assert response.json()["provider_message_id"].startswith("wamid.")
    assert read.status_code == 200, read.text
    bodies = [json.loads(r["body"]) for r in sandbox_sends(local_stack, f"/{channel['phone_number_id']}/messages")]
    assert [b.get("type", b.get("status")) for b in bodies] == ["text", "template", "reaction", "read"]
    assert all(b["messaging_product"] == "whatsapp" for b in bodies)
    assert bodies[0]["to"] == phone and bodies[0]["recipient_type"] == "individual"
