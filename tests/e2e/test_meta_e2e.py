"""Meta's webhook over real HTTP against the local stack (docs/local-stack.md): a channel created through the
API with an admin token, Meta's verification handshake, a signed notification, the result in the inbox, and the
sandbox's signed status notifications after a send."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from local.testing import LocalStackClient, wait_for
from tests.meta_support import change_value, meta_bytes, notification, sign, text_message

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


@pytest.fixture
def meta_channel(local_stack: LocalStackClient) -> dict[str, Any]:
    tenant = f"tenant-{secrets.token_hex(4)}"
    token = local_stack.token(tenant_id=tenant, admin=True)
    body = {
        "provider": "meta",
        "name": "Meta main",
        "phone_number_id": str(10**14 + secrets.randbelow(10**14)),
        "business_account_id": "419561257915477",
        "display_phone_number": "+15550783881",
        "access_token": "EAAG-e2e-" + secrets.token_hex(12),
        "app_secret": "e2e-app-secret-" + secrets.token_hex(12),
        "verify_token": None,
        "location_id": None,
    }
    response = local_stack.request("POST", "/v1/channels", token=token, json=body)
    assert response.status_code == 201, response.text
    return {"tenant": tenant, "token": token, "body": body, "channel": response.json()}


def post_signed(local_stack: LocalStackClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return local_stack.request("POST", "/webhooks/meta", data=body, headers=headers)


def test_verification_handshake(local_stack: LocalStackClient, meta_channel: dict[str, Any]) -> None:
    channel = meta_channel["channel"]
    assert channel["webhook_url"] == f"{local_stack.base_url}/webhooks/meta"
    assert channel["verify_token"]  # generated, since none was given

    response = local_stack.request(
        "GET",
        "/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": channel["verify_token"], "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "1158201444"
    after = local_stack.request("GET", f"/v1/channels/{channel['id']}", token=meta_channel["token"]).json()
    assert after["webhook_verified_at"]

    wrong = local_stack.request(
        "GET",
        "/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "not-the-token", "hub.challenge": "1"},
    )
    assert wrong.status_code == 403
    markup = local_stack.request(
        "GET",
        "/webhooks/meta",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": channel["verify_token"],
            "hub.challenge": "<svg/onload=1>",
        },
    )
    assert markup.status_code == 403
    assert "<svg" not in markup.text


def test_signed_text_is_visible_in_the_inbox(local_stack: LocalStackClient, meta_channel: dict[str, Any]) -> None:
    number_id = meta_channel["channel"]["phone_number_id"]
    wamid = f"wamid.e2e.{secrets.token_hex(8)}"
    body = meta_bytes(
        notification(
            change_value(
                number_id,
                messages=[text_message(wamid, "Hola, ¿tienen envío? 🚚", sender="16505551234")],
                contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            )
        )
    )

    assert post_signed(local_stack, body, None).status_code == 401
    assert post_signed(local_stack, body, sign(body, "not-the-secret")).status_code == 401
    response = post_signed(local_stack, body, sign(body, meta_channel["body"]["app_secret"]))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1

    token = local_stack.token(tenant_id=meta_channel["tenant"], admin=False)
    conversations = local_stack.request("GET", "/v1/conversations", token=token)
    assert conversations.status_code == 200, conversations.text
    (conversation,) = conversations.json()["items"]
    assert conversation["channel_id"] == meta_channel["channel"]["id"]
    assert conversation["provider"] == "meta"
    assert conversation["contact"] == {"phone": "+16505551234", "name": "Sheena Nelson"}
    assert conversation["unread_count"] == 1

    messages = local_stack.request("GET", f"/v1/conversations/{conversation['id']}/messages", token=token)
    assert messages.status_code == 200, messages.text
    (message,) = messages.json()["items"]
    assert message["provider_message_id"] == wamid
    assert (message["type"], message["text"], message["direction"]) == ("text", "Hola, ¿tienen envío? 🚚", "inbound")

    again = post_signed(local_stack, body, sign(body, meta_channel["body"]["app_secret"]))
    assert (again.status_code, again.json()["duplicates"]) == (200, 1)


def test_bad_bodies_over_http(local_stack: LocalStackClient, meta_channel: dict[str, Any]) -> None:
    secret = meta_channel["body"]["app_secret"]
    assert post_signed(local_stack, b"{not json", sign(b"{not json", secret)).status_code == 400
    huge = b'{"object": "whatsapp_business_account", "entry": [], "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    assert post_signed(local_stack, huge, sign(huge, secret)).status_code == 413


def test_a_send_gets_the_sandboxs_signed_statuses_up_to_read(local_stack: LocalStackClient,
                                                              meta_channel: dict[str, Any]) -> None:
    """The sandbox plays Meta: after accepting the send it posts sent → delivered → read to /webhooks/meta, signed
    with the channel's app secret, and the message shows each tick."""
    number_id = meta_channel["channel"]["phone_number_id"]
    body = meta_bytes(notification(change_value(number_id, messages=[
        text_message(f"wamid.e2e.{secrets.token_hex(8)}", "Is it in stock?", sender="16505551234")])))
    assert post_signed(local_stack, body, sign(body, meta_channel["body"]["app_secret"])).status_code == 200
    token = meta_channel["token"]
    (conversation,) = local_stack.request("GET", "/v1/conversations", token=token).json()["items"]

    sent = local_stack.request("POST", f"/v1/conversations/{conversation['id']}/messages", token=token,
                               json={"type": "text", "text": "Yes, in blue and green."})
    assert sent.status_code == 201, sent.text
    message = sent.json()

    def status() -> str:
        listed = local_stack.request("GET", f"/v1/conversations/{conversation['id']}/messages", token=token).json()
        return str(next(m["status"] for m in listed["items"] if m["id"] == message["id"]))

    assert message["status"] == "sent"
    wait_for(lambda: status() == "read", "the sandbox's read notification")  # accepted: signed with the secret
