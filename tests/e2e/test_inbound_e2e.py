"""Inbound processing end to end (issue #5): signed webhooks into the local stack, its poller feeding the
inbound processor from the messages table's stream, media landing in moto's S3, presigned URLs from the inbox
API downloading the same bytes, auto-replies reaching the provider sandbox.

Twilio media come from a server in this test process that behaves like Twilio: the API URL demands the
channel's Basic auth and redirects to a second host name (``localhost``) that rejects any ``Authorization``
header. Meta media are uploaded to the sandbox, which answers the Graph media-id lookup and the download.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from twilio.request_validator import RequestValidator

from local.testing import LocalStackClient, MediaHost, free_port, wait_for
from tests.meta_support import change_value, meta_bytes, notification, sign

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

ACCOUNT = "AC" + "e2e5" * 8
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(700 * 1024)
PDF = b"%PDF-1.7\n" + os.urandom(5 * 1024 * 1024 + 4321)  # over one 5 MB part: a multipart upload
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(150 * 1024)


def random_number() -> str:
    return "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0")


# ---------------------------------------------------------------------------------------------- Twilio-like media
MEDIA_FILES = {"ME0": (JPEG, "image/jpeg"), "ME1": (PDF, "application/pdf")}


def basic_auth(token: str) -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT}:{token}".encode()).decode()


@pytest.fixture(scope="module")
def twilio_media() -> Iterator[MediaHost]:
    with MediaHost(MEDIA_FILES, api_prefix="/2010-04-01/") as host:
        yield host


# ---------------------------------------------------------------------------------------------- helpers
class Tenant:
    def __init__(self, client: LocalStackClient) -> None:
        self.client = client
        self.admin = client.token(tenant_id=f"in-{secrets.token_hex(4)}", admin=True)

    def create_channel(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.request("POST", "/v1/channels", token=self.admin, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def messages_with(self, channel_id: str, contact: str) -> list[dict[str, Any]]:
        conversations = self.client.request("GET", "/v1/conversations?limit=100", token=self.admin).json()["items"]
        conversation = next((c for c in conversations
                             if c["channel_id"] == channel_id and c["contact"]["phone"] == contact), None)
        if conversation is None:
            return []
        response = self.client.request("GET", f"/v1/conversations/{conversation['id']}/messages", token=self.admin)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def settled(self, channel_id: str, contact: str, provider_message_id: str) -> dict[str, Any] | None:
        """The inbound message once every media entry left ``pending``."""
        for message in self.messages_with(channel_id, contact):
            if message["provider_message_id"] == provider_message_id and message["media"] and all(
                m["status"] != "pending" for m in message["media"]
            ):
                return message
        return None


def post_twilio(client: LocalStackClient, channel: dict[str, Any], token: str, params: dict[str, str]) -> None:
    signature = RequestValidator(token).compute_signature(channel["webhook_url"], params)
    response = client.request("POST", "/webhooks/twilio", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text


def twilio_params(channel: dict[str, Any], contact: str, **extra: str) -> dict[str, str]:
    sid = "MM" + secrets.token_hex(16)
    return {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT,
            "From": f"whatsapp:{contact}", "To": f"whatsapp:{channel['phone_number']}", "Body": "",
            "NumMedia": "0", "ProfileName": "E2E", "WaId": contact[1:], "SmsStatus": "received",
            "ApiVersion": "2010-04-01", **extra}


def download(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return response.content


# ---------------------------------------------------------------------------------------------- Twilio
def test_twilio_message_with_two_media_lands_in_s3(local_stack: LocalStackClient, twilio_media: MediaHost) -> None:
    tenant = Tenant(local_stack)
    token = secrets.token_hex(16)
    channel = tenant.create_channel({"provider": "twilio", "name": "Media", "phone_number": random_number(),
                                     "account_sid": ACCOUNT, "auth_token": token})
    twilio_media.basic = basic_auth(token)
    twilio_media.hits.clear()
    contact = random_number()
    base = f"{twilio_media.url}/2010-04-01/Accounts/{ACCOUNT}/Messages/MM{secrets.token_hex(16)}/Media"
    params = twilio_params(channel, contact, NumMedia="2", MessageType="image",
                           MediaUrl0=f"{base}/ME0", MediaContentType0="image/jpeg",
                           MediaUrl1=f"{base}/ME1", MediaContentType1="application/pdf")
    post_twilio(local_stack, channel, token, params)

    message = wait_for(lambda: tenant.settled(channel["id"], contact, params["MessageSid"]), "both media stored")

    assert [m["status"] for m in message["media"]] == ["stored", "stored"], message["media"]
    for media, (content, content_type) in zip(message["media"], [(JPEG, "image/jpeg"), (PDF, "application/pdf")],
                                              strict=True):
        assert media["content_type"] == content_type
        assert media["size"] == len(content)
        assert media["sha256"] == hashlib.sha256(content).hexdigest()
        assert media["url"].startswith(local_stack.state["aws_endpoint"])  # presigned, on moto's S3
        assert download(media["url"]) == content
    # moto's server answers the presigned GET like S3: a PDF comes as a download, the image inline
    served = [requests.get(m["url"], timeout=30).headers for m in message["media"]]
    assert [(h["Content-Type"], h["Content-Disposition"]) for h in served] == [
        ("image/jpeg", "inline"), ("application/octet-stream", "attachment")]
    # the account's credentials went to the API host only
    assert {(host, path.split("/")[1], auth is not None) for host, path, auth in twilio_media.hits} == {
        ("127.0.0.1", "2010-04-01", True), ("localhost", "cdn", False)}


def test_twilio_keyword_auto_reply_goes_to_the_provider(local_stack: LocalStackClient) -> None:
    tenant = Tenant(local_stack)
    token = secrets.token_hex(16)
    channel = tenant.create_channel({"provider": "twilio", "name": "Bot", "phone_number": random_number(),
                                     "account_sid": ACCOUNT, "auth_token": token})
    patched = local_stack.request("PATCH", f"/v1/channels/{channel['id']}", token=tenant.admin, json={
        "auto_reply": {"mode": "on", "rules": [{"keywords": ["price", "cost"], "reply": "Prices: example.com/p"}],
                       "fallback": None, "unsupported_notice": None, "operator_lock_minutes": 30}})
    assert patched.status_code == 200, patched.text
    contact = random_number()
    sid = "SM" + secrets.token_hex(16)
    post_twilio(local_stack, channel, token, twilio_params(channel, contact, MessageSid=sid, SmsMessageSid=sid,
                                                           SmsSid=sid, Body="What does it COST?"))

    def auto_reply() -> dict[str, Any] | None:
        return next((m for m in tenant.messages_with(channel["id"], contact)
                     if m["direction"] == "outbound" and m["status"] in ("sent", "delivered", "read")), None)

    reply = wait_for(auto_reply, "the auto-reply to be sent")
    assert reply["sender"] == {"kind": "auto", "id": "rule:0"} and reply["text"] == "Prices: example.com/p"
    sends = [r for r in local_stack.sandbox_requests()
             if r["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
             and parse_qs(r["body"]).get("To") == [f"whatsapp:{contact}"]]
    assert [parse_qs(r["body"])["Body"] for r in sends] == [["Prices: example.com/p"]]


# ---------------------------------------------------------------------------------------------- Meta
@pytest.fixture(scope="module")
def meta(local_stack: LocalStackClient) -> dict[str, Any]:
    tenant = Tenant(local_stack)
    app_secret = "e2e-app-secret-" + secrets.token_hex(8)
    channel = tenant.create_channel({
        "provider": "meta", "name": "Meta media", "phone_number_id": str(10**14 + secrets.randbelow(10**14)),
        "business_account_id": "419561257915477", "display_phone_number": "+15550783881",
        "access_token": "EAAG-e2e-" + secrets.token_hex(12), "app_secret": app_secret})
    return {"tenant": tenant, "channel": channel, "app_secret": app_secret}


def upload(local_stack: LocalStackClient, content: bytes, mime_type: str, **query: str) -> dict[str, Any]:
    response = requests.post(f"{local_stack.sandbox_url}/_sandbox/media", data=content, params=query,
                             headers={"Content-Type": mime_type}, timeout=10)
    assert response.status_code == 201, response.text
    return dict(response.json())


def post_meta_image(local_stack: LocalStackClient, meta: dict[str, Any], media_id: str, sha256: str) -> tuple[str, str]:
    contact_wa = "1650555" + str(secrets.randbelow(10**4)).rjust(4, "0")
    wamid = "wamid." + base64.b64encode(secrets.token_bytes(18)).decode()
    message = {"from": contact_wa, "id": wamid, "timestamp": str(int(time.time())), "type": "image",
               "image": {"id": media_id, "mime_type": "image/png", "sha256": sha256, "caption": "look"}}
    body = meta_bytes(notification(change_value(meta["channel"]["phone_number_id"], messages=[message])))
    response = local_stack.request("POST", "/webhooks/meta", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, meta["app_secret"])})
    assert response.status_code == 200, response.text
    return "+" + contact_wa, wamid


def test_meta_image_media_id_to_url_to_bytes(local_stack: LocalStackClient, meta: dict[str, Any]) -> None:
    uploaded = upload(local_stack, PNG, "image/png")
    contact, wamid = post_meta_image(local_stack, meta, uploaded["id"],
                                     base64.b64encode(hashlib.sha256(PNG).digest()).decode())

    message = wait_for(lambda: meta["tenant"].settled(meta["channel"]["id"], contact, wamid), "the image stored")

    (media,) = message["media"]
    assert media["status"] == "stored", media
    assert media["content_type"] == "image/png" and media["size"] == len(PNG)
    assert media["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert download(media["url"]) == PNG
    graph = [r for r in local_stack.sandbox_requests() if uploaded["id"] in r["path"]]
    assert [r["path"].split("/")[1] for r in graph] == [local_stack.state["env"]["META_GRAPH_API_VERSION"], "_sandbox"]


def test_meta_sha256_mismatch_fails_the_media_and_keeps_the_message(
    local_stack: LocalStackClient, meta: dict[str, Any]
) -> None:
    uploaded = upload(local_stack, PNG, "image/png", sha256="ab" * 32)
    contact, wamid = post_meta_image(local_stack, meta, uploaded["id"], "ab" * 32)

    message = wait_for(lambda: meta["tenant"].settled(meta["channel"]["id"], contact, wamid), "the media failed")

    (media,) = message["media"]
    assert media["status"] == "failed" and "sha256" in media["reason"] and media["url"] is None
    assert message["text"] == "look" and message["type"] == "image"


def test_meta_host_off_the_allow_list_is_not_fetched(local_stack: LocalStackClient, meta: dict[str, Any]) -> None:
    uploaded = upload(local_stack, PNG, "image/png", host="lookaside.example.com")
    contact, wamid = post_meta_image(local_stack, meta, uploaded["id"],
                                     base64.b64encode(hashlib.sha256(PNG).digest()).decode())

    message = wait_for(lambda: meta["tenant"].settled(meta["channel"]["id"], contact, wamid), "the media failed")

    (media,) = message["media"]
    assert media["status"] == "failed" and "allow-list" in media["reason"]
    assert not [r for r in local_stack.sandbox_requests() if r["path"] == f"/_sandbox/media/{uploaded['id']}"]


# ---------------------------------------------------------------------------------------------- dead letters
def test_dead_lettered_message_is_replayed_once_the_fault_is_gone(local_stack: LocalStackClient) -> None:
    """The media host is down: the record fails its retries and lands in the DLQ (the auto-reply went out on the
    first attempt). Once the host is up, ``python -m local.replay`` (``make replay``) stores the media, and the
    contact still got exactly one reply."""
    tenant = Tenant(local_stack)
    token = secrets.token_hex(16)
    channel = tenant.create_channel({"provider": "twilio", "name": "Replay", "phone_number": random_number(),
                                     "account_sid": ACCOUNT, "auth_token": token})
    patched = local_stack.request("PATCH", f"/v1/channels/{channel['id']}", token=tenant.admin, json={
        "auto_reply": {"mode": "on", "rules": [], "fallback": "Got it, thanks!"}})
    assert patched.status_code == 200, patched.text
    sqs = boto3.client("sqs", endpoint_url=local_stack.state["aws_endpoint"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    queue_url = local_stack.state["queues"]["DeadLetterQueue"]

    def dead_letters() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    before = dead_letters()
    port = free_port()  # nothing listens there yet: connection refused, a retryable fault
    contact = random_number()
    params = twilio_params(channel, contact, NumMedia="1", MessageType="image", Body="here",
                           MediaUrl0=f"http://127.0.0.1:{port}/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME0",
                           MediaContentType0="image/jpeg")
    post_twilio(local_stack, channel, token, params)

    wait_for(lambda: dead_letters() > before, "the record in the dead-letter queue")
    (message,) = [m for m in tenant.messages_with(channel["id"], contact) if m["direction"] == "inbound"]
    assert message["media"][0]["status"] == "pending"

    with MediaHost(MEDIA_FILES, basic=basic_auth(token), api_prefix="/2010-04-01/", port=port):
        env = {**os.environ, "LOCAL_STATE_FILE": str(local_stack.stack.state_path)}
        replayed = subprocess.run([sys.executable, "-m", "local.replay"], env=env, capture_output=True, text=True,
                                  timeout=120, check=False)

    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed" in replayed.stdout
    stored = tenant.settled(channel["id"], contact, params["MessageSid"])
    assert stored is not None and stored["media"][0]["status"] == "stored"
    assert download(stored["media"][0]["url"]) == JPEG
    replies = [m for m in tenant.messages_with(channel["id"], contact) if m["direction"] == "outbound"]
    assert [(r["text"], r["sender"]["kind"]) for r in replies] == [("Got it, thanks!", "auto")]
    sends = [r for r in local_stack.sandbox_requests()
             if r["path"].endswith("/Messages.json") and parse_qs(r["body"]).get("To") == [f"whatsapp:{contact}"]]
    assert len(sends) == 1
    assert dead_letters() == before
