"""Twilio webhooks end to end: real HTTP against the local stack (``python -m local.dev``), signed by
twilio-python's RequestValidator against the channel's ``webhook_url`` exactly as Twilio would sign."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from twilio.request_validator import RequestValidator

from local.testing import LocalStackClient, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

ACCOUNT = "AC" + "e2e0" * 8
OTHER_ACCOUNT = "AC" + "e2e1" * 8


def random_number() -> str:
    return "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0")


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def without_port(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or ""))


class TwilioChannel:
    def __init__(self, client: LocalStackClient, tenant: str, account: str) -> None:
        self.client = client
        self.tenant = tenant
        self.account = account
        self.number = random_number()
        self.token = secrets.token_hex(16)
        self.admin = client.token(tenant_id=tenant, admin=True)
        response = client.request("POST", "/v1/channels", token=self.admin, json={
            "provider": "twilio", "name": "E2E", "phone_number": self.number, "account_sid": account,
            "auth_token": self.token, "messaging_service_sid": None, "location_id": None,
        })
        assert response.status_code == 201, response.text
        self.data: dict[str, Any] = response.json()

    def post(self, params: dict[str, str], *, url: str | None = None, token: str | None = None,
             signature: str | None = "sign", path: str = "/webhooks/twilio") -> Any:
        if signature == "sign":
            signed_url = url or self.data["webhook_url" if path == "/webhooks/twilio" else "status_callback_url"]
            signature = RequestValidator(token or self.token).compute_signature(signed_url, params)
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        # `data=` makes requests send application/x-www-form-urlencoded, as Twilio does
        return self.client.request("POST", path, data=params, headers=headers)

    def inbound(self, contact: str, **extra: str) -> dict[str, str]:
        sid = new_sid()
        return {
            "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": "Zoë Fernández", "MessageType": "text",
            "SmsSid": sid, "WaId": contact[1:], "SmsStatus": "received", "Body": "Hi from the e2e test",
            "To": f"whatsapp:{self.number}", "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid,
            "AccountSid": self.account, "From": f"whatsapp:{contact}", "ApiVersion": "2010-04-01", **extra,
        }

    def conversations(self) -> list[dict[str, Any]]:
        response = self.client.request("GET", "/v1/conversations?limit=100", token=self.admin)
        assert response.status_code == 200, response.text
        return [c for c in response.json()["items"] if c["channel_id"] == self.data["id"]]

    def conversation_with(self, contact: str) -> dict[str, Any] | None:
        return next((c for c in self.conversations() if c["contact"]["phone"] == contact), None)

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        response = self.client.request("GET", f"/v1/conversations/{conversation_id}/messages", token=self.admin)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])


@pytest.fixture(scope="module")
def channel(local_stack: LocalStackClient) -> TwilioChannel:
    return TwilioChannel(local_stack, f"tw-{secrets.token_hex(4)}", ACCOUNT)


@pytest.fixture(scope="module")
def other_channel(local_stack: LocalStackClient) -> TwilioChannel:
    return TwilioChannel(local_stack, f"tw-{secrets.token_hex(4)}", OTHER_ACCOUNT)


def test_webhook_url_is_the_local_gateway(local_stack: LocalStackClient, channel: TwilioChannel) -> None:
    assert channel.data["webhook_url"] == f"{local_stack.base_url}/webhooks/twilio"
    assert channel.data["status_callback_url"] == f"{local_stack.base_url}/webhooks/twilio/status"
    assert "auth_token" not in channel.data and channel.token not in str(channel.data)


def test_signed_text_is_stored_and_listed(channel: TwilioChannel) -> None:
    contact = random_number()
    params = channel.inbound(contact)
    response = channel.post(params)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == "<Response/>"
    conversation = channel.conversation_with(contact)
    assert conversation is not None
    assert conversation["contact"] == {"phone": contact, "name": "Zoë Fernández"}
    assert conversation["provider"] == "twilio"
    assert conversation["unread_count"] == 1
    (message,) = channel.messages(conversation["id"])
    assert message["provider_message_id"] == params["MessageSid"]
    assert (message["direction"], message["type"], message["status"]) == ("inbound", "text", "received")
    assert message["text"] == "Hi from the e2e test"


def test_signatures_with_and_without_port_are_accepted(channel: TwilioChannel) -> None:
    contact = random_number()
    url = channel.data["webhook_url"]
    assert urlsplit(url).port is not None
    sids = []
    for signed_url in (url, without_port(url)):
        params = channel.inbound(contact)
        response = channel.post(params, url=signed_url)
        assert response.status_code == 200, (signed_url, response.text)
        sids.append(params["MessageSid"])

    conversation = channel.conversation_with(contact)
    assert conversation is not None and conversation["unread_count"] == 2
    assert sorted(m["provider_message_id"] for m in channel.messages(conversation["id"])) == sorted(sids)


def test_media_only_message(channel: TwilioChannel) -> None:
    contact = random_number()
    sid = new_sid("MM")
    params = channel.inbound(contact, MessageSid=sid, SmsMessageSid=sid, SmsSid=sid, Body="", NumMedia="2",
                             MessageType="image", MediaUrl0="https://api.twilio.com/x/Media/ME0",
                             MediaContentType0="image/jpeg", MediaUrl1="https://api.twilio.com/x/Media/ME1",
                             MediaContentType1="application/pdf")
    assert channel.post(params).status_code == 200
    conversation = channel.conversation_with(contact)
    assert conversation is not None
    (message,) = channel.messages(conversation["id"])
    assert message["type"] == "image"
    assert [m["content_type"] for m in message["media"]] == ["image/jpeg", "application/pdf"]
    # pending until the inbound processor fetched them (the sandbox has no such media: they may end failed)
    assert {m["status"] for m in message["media"]} <= {"pending", "stored", "failed"}


@pytest.mark.parametrize("case", ["missing", "wrong", "other channel's token", "modified body"])
def test_bad_signature_is_401_and_nothing_is_stored(channel: TwilioChannel, other_channel: TwilioChannel,
                                                    case: str) -> None:
    contact = random_number()
    params = channel.inbound(contact)
    if case == "missing":
        response = channel.post(params, signature=None)
    elif case == "wrong":
        response = channel.post(params, signature="bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==")
    elif case == "other channel's token":
        response = channel.post(params, token=other_channel.token)
    else:
        signature = RequestValidator(channel.token).compute_signature(channel.data["webhook_url"], params)
        response = channel.post({**params, "Body": "tampered"}, signature=signature)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert channel.conversation_with(contact) is None


def test_unknown_number_is_404(channel: TwilioChannel) -> None:
    params = channel.inbound(random_number(), To=f"whatsapp:{random_number()}")
    assert channel.post(params).status_code == 404


def test_disabled_channel_answers_404_at_once(local_stack: LocalStackClient) -> None:
    channel = TwilioChannel(local_stack, f"tw-{secrets.token_hex(4)}", ACCOUNT)
    contact = random_number()
    assert channel.post(channel.inbound(contact)).status_code == 200  # the webhook's cache now holds the channel
    deleted = local_stack.request("DELETE", f"/v1/channels/{channel.data['id']}", token=channel.admin)
    assert deleted.status_code == 204

    response = channel.post(channel.inbound(contact))
    assert response.status_code == 404, response.text
    conversation = channel.conversation_with(contact)
    assert conversation is not None and conversation["unread_count"] == 1


def test_unparsable_body_is_400(local_stack: LocalStackClient) -> None:
    response = local_stack.request("POST", "/webhooks/twilio", data=b"\xff\xfe not a form",
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": "x"})
    assert response.status_code == 400


def test_status_callbacks_from_the_sandbox_reach_read(local_stack: LocalStackClient, channel: TwilioChannel) -> None:
    """A send through the gateway goes to the sandbox, which posts signed sent → delivered → read callbacks."""
    contact = random_number()
    assert channel.post(channel.inbound(contact)).status_code == 200
    conversation = channel.conversation_with(contact)
    assert conversation is not None
    sent = local_stack.request("POST", f"/v1/conversations/{conversation['id']}/messages", token=channel.admin,
                               json={"type": "text", "text": "Thanks, on its way"})
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["id"]

    def status() -> str:
        return str(next(m["status"] for m in channel.messages(conversation["id"]) if m["id"] == message_id))

    wait_for(lambda: status() == "read", "the sandbox's read callback")
