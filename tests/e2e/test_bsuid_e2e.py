"""A WhatsApp user without a phone number, end to end over real HTTP against the local stack: a signed Meta
webhook naming only a business-scoped user id (BSUID) → listed in the inbox → answered by an operator (the
sandbox receives Meta's ``recipient`` field, no ``to``, and reports its statuses by ``recipient_user_id``) → a
later message with phone + the same BSUID lands in the same conversation."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from local.testing import LocalStackClient, wait_for
from tests.e2e.test_meta_e2e import meta_channel, post_signed  # noqa: F401 - the fixture
from tests.meta_support import fixture, meta_bytes, sign

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


def notification(name: str, phone_number_id: str, bsuid: str, wamid: str, at: int) -> dict[str, Any]:
    payload = fixture(name)
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    for contact in value["contacts"]:
        contact["user_id"] = bsuid
    for message in value["messages"]:
        message["from_user_id"], message["id"], message["timestamp"] = bsuid, wamid, str(at)
        message.pop("from_parent_user_id", None)
    return payload


def test_a_bsuid_only_contact_is_listed_answered_and_later_linked_to_its_phone(
    local_stack: LocalStackClient, meta_channel: dict[str, Any]  # noqa: F811
) -> None:
    channel, token, secret = meta_channel["channel"], meta_channel["token"], meta_channel["body"]["app_secret"]
    bsuid = f"US.{secrets.randbelow(10**19):019d}"
    now = int(time.time())
    first = meta_bytes(notification("bsuid_only", channel["phone_number_id"], bsuid, f"wamid.e2e-{bsuid}-1", now - 2))
    assert post_signed(local_stack, first, sign(first, secret)).status_code == 200

    (conversation,) = local_stack.request("GET", "/v1/conversations", token=token).json()["items"]
    assert conversation["contact"]["phone"] is None
    assert conversation["contact"]["wa_user_id"] == bsuid

    sent = local_stack.request(
        "POST", f"/v1/conversations/{conversation['id']}/messages", token=token,
        json={"type": "text", "text": "Yes, we deliver to Oakland."},
    )
    assert sent.status_code == 201, sent.text
    bodies = [json.loads(r["body"]) for r in local_stack.sandbox_requests()
              if r["method"] == "POST" and r["path"].endswith(f"/{channel['phone_number_id']}/messages")]
    (body,) = [b for b in bodies if b.get("text", {}).get("body") == "Yes, we deliver to Oakland."]
    assert body["recipient"] == bsuid and "to" not in body

    def status() -> str:
        listed = local_stack.request("GET", f"/v1/conversations/{conversation['id']}/messages", token=token).json()
        return str(next(m["status"] for m in listed["items"] if m["id"] == sent.json()["id"]))

    # the sandbox's statuses name the recipient as the send did: recipient_user_id, no recipient_id
    wait_for(lambda: status() == "read", "the sandbox's read notification for a BSUID recipient")

    later = notification("bsuid_with_phone", channel["phone_number_id"], bsuid, f"wamid.e2e-{bsuid}-2", now + 1)
    later_bytes = meta_bytes(later)
    assert post_signed(local_stack, later_bytes, sign(later_bytes, secret)).status_code == 200

    (after,) = local_stack.request("GET", "/v1/conversations", token=token).json()["items"]
    assert after["id"] == conversation["id"]
    assert after["contact"]["id"] == conversation["contact"]["id"]
    assert after["contact"]["phone"] == "+16505551234" and after["contact"]["wa_user_id"] == bsuid
    messages = local_stack.request("GET", f"/v1/conversations/{after['id']}/messages", token=token).json()["items"]
    assert sorted(m["direction"] for m in messages) == ["inbound", "inbound", "outbound"]
