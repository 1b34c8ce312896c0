"""inbox_api in-process against moto; conversations and messages written through the store."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from gateway.bootstrap import ready
from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.message import InboundMessage, MediaRef
from gateway.store.messages_repo import MessageRepository


def _channel(tenant: str, channel_id: str = "ch_1") -> Channel:
    return Channel(
        tenant_id=tenant,
        channel_id=channel_id,
        provider=Provider.TWILIO,
        name="Main",
        phone_number="+14155238886",
        status=ChannelStatus.ACTIVE,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        credentials_ciphertext="x",
        location_id="store-7",
    )


def _inbound(i: int, phone: str, **extra: Any) -> InboundMessage:
    return InboundMessage(
        provider="twilio",
        provider_message_id=f"SM{i:032d}",
        contact_phone=phone,
        type="text",
        text=f"hello {i}",
        **extra,
    )


@pytest.fixture
def store(aws: Any) -> MessageRepository:
    ready()
    return MessageRepository()


@pytest.fixture
def call(invoke: Any, api_event: Any, claims: Any) -> Any:
    def _call(
        method: str, path: str, body: Any = None, query: dict | None = None, tenant: str = "acme"
    ) -> tuple[int, Any]:
        event = api_event(method, path, json=body, query=query, claims=claims(tenant_id=tenant, admin=False))
        response = invoke("InboxApiFunction", event)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return _call


def test_conversations_newest_activity_first_with_cursor_pagination(store: MessageRepository, call: Any) -> None:
    channel = _channel("acme")
    phones = [f"+1415555{i:04d}" for i in range(5)]
    for i, phone in enumerate(phones):
        store.record_inbound(
            channel, _inbound(i, phone, contact_name=f"Contact {i}"), now=f"2026-01-01T00:00:0{i}.000Z"
        )
    seen, cursor = [], None
    while True:
        status, page = call("GET", "/v1/conversations", query={"limit": "2", **({"cursor": cursor} if cursor else {})})
        assert status == 200, page
        seen += [c["contact"]["phone"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(phones))
    status, page = call("GET", "/v1/conversations", query={"limit": "1"})
    first = page["items"][0]
    assert first["contact"] == {"phone": phones[-1], "name": "Contact 4"}
    assert first["unread_count"] == 1 and first["location_id"] == "store-7" and first["provider"] == "twilio"
    assert set(first) >= {
        "id",
        "channel_id",
        "provider",
        "contact",
        "last_message_at",
        "last_inbound_at",
        "unread_count",
        "bot_mode",
        "operator_lock_until",
        "location_id",
    }


def test_messages_newest_first_with_pagination_and_media(store: MessageRepository, call: Any) -> None:
    channel = _channel("acme")
    for i in range(5):
        media = [MediaRef(content_type="image/jpeg", provider_url="https://api.twilio.com/x")] if i == 4 else []
        store.record_inbound(channel, _inbound(i, "+14155550000", media=media), now=f"2026-01-01T00:00:0{i}.000Z")
    _, conversations = call("GET", "/v1/conversations")
    conversation = conversations["items"][0]
    assert conversation["unread_count"] == 5
    texts, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = call("GET", f"/v1/conversations/{conversation['id']}/messages", query=query)
        assert status == 200, page
        texts += [m["text"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert texts == [f"hello {i}" for i in reversed(range(5))]
    _, page = call("GET", f"/v1/conversations/{conversation['id']}/messages", query={"limit": "1"})
    message = page["items"][0]
    assert message["direction"] == "inbound" and message["status"] == "received"
    assert message["sender"] == {"kind": "contact", "id": "+14155550000"}
    assert message["media"][0]["status"] == "pending" and message["media"][0]["url"] is None
    assert message["provider_message_id"] == "SM" + "4".zfill(32)


def test_redelivery_changes_nothing(store: MessageRepository, call: Any) -> None:
    channel = _channel("acme")
    assert store.record_inbound(channel, _inbound(1, "+14155550000"))
    assert store.record_inbound(channel, _inbound(1, "+14155550000")) is None
    _, conversations = call("GET", "/v1/conversations")
    assert conversations["items"][0]["unread_count"] == 1


def test_tenant_isolation_and_404s(store: MessageRepository, call: Any) -> None:
    store.record_inbound(_channel("acme"), _inbound(1, "+14155550000"))
    _, conversations = call("GET", "/v1/conversations")
    conversation_id = conversations["items"][0]["id"]
    assert call("GET", "/v1/conversations", tenant="globex")[1] == {"items": [], "next_cursor": None}
    for method, path, body in [
        ("GET", f"/v1/conversations/{conversation_id}", None),
        ("GET", f"/v1/conversations/{conversation_id}/messages", None),
        ("PATCH", f"/v1/conversations/{conversation_id}", {"bot_mode": "off"}),
        ("GET", "/v1/conversations/cv_doesnotexist", None),
    ]:
        status, answer = call(method, path, body, tenant="globex")
        assert status == 404 and answer["error"]["code"] == "conversation_not_found", (method, path)
    # A cursor minted for acme is refused for globex, never used to read acme's partition.
    store.record_inbound(_channel("acme"), _inbound(2, "+14155550001"))
    _, page = call("GET", "/v1/conversations", query={"limit": "1"})
    status, answer = call("GET", "/v1/conversations", query={"cursor": page["next_cursor"]}, tenant="globex")
    assert status == 422 and answer["error"]["code"] == "validation_error"


def test_patch_bot_mode_lock_and_read(store: MessageRepository, call: Any) -> None:
    store.record_inbound(_channel("acme"), _inbound(1, "+14155550000"))
    _, conversations = call("GET", "/v1/conversations")
    cid = conversations["items"][0]["id"]
    status, body = call("PATCH", f"/v1/conversations/{cid}", {"bot_mode": "shadow", "mark_read": True})
    assert status == 200 and body["bot_mode"] == "shadow" and body["unread_count"] == 0
    status, body = call("PATCH", f"/v1/conversations/{cid}", {"bot_mode": None, "release_operator_lock": True})
    assert status == 200 and body["bot_mode"] is None and body["operator_lock_until"] is None
    status, body = call("PATCH", f"/v1/conversations/{cid}", {"bot_mode": "loud"})
    assert status == 422 and "bot_mode" in body["error"]["message"]
    assert call("PATCH", f"/v1/conversations/{cid}", {})[0] == 422


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "%%%"}])
def test_bad_paging_parameters_are_422(store: MessageRepository, call: Any, query: dict) -> None:
    status, body = call("GET", "/v1/conversations", query=query)
    assert status == 422 and body["error"]["code"] == "validation_error"


# A contact's file that a browser would run if it were shown inline from the presigned URL's origin.
HTML = b"<html><script>alert(document.domain)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>'


@pytest.mark.parametrize(
    ("content_type", "filename", "served_type", "disposition"),
    [
        ("text/html", None, "application/octet-stream", "attachment"),
        ("image/svg+xml", "logo.svg", "application/octet-stream",
         "attachment; filename=\"logo.svg\"; filename*=UTF-8''logo.svg"),
        ("application/pdf", "Factura nº 7.pdf", "application/octet-stream",
         "attachment; filename=\"Factura n_ 7.pdf\"; filename*=UTF-8''Factura%20n%C2%BA%207.pdf"),
        ("image/jpeg", None, "image/jpeg", "inline"),
    ],
    ids=["html", "svg", "pdf", "jpeg"],
)
def test_presigned_media_urls_serve_only_safe_types_inline(
    aws: Any, store: MessageRepository, call: Any,
    content_type: str, filename: str | None, served_type: str, disposition: str,
) -> None:
    import boto3
    import requests
    from gateway.config import get_settings

    channel = _channel("acme")
    body = SVG if "svg" in content_type else HTML
    media = [MediaRef(content_type=content_type, provider_url="https://api.twilio.com/x", filename=filename)]
    assert store.record_inbound(channel, _inbound(1, "+14155550000", media=media))
    _, conversations = call("GET", "/v1/conversations")
    (item,) = store.list("acme", conversations["items"][0]["id"], 10, None).items
    key = f"acme/{item.conversation_id}/{item.message_id}/0"
    bucket = get_settings().media_bucket
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    store.media_stored(item.pk, item.sk, 0, s3_key=key, size=len(body), sha256="0" * 64, content_type=content_type)

    _, page = call("GET", f"/v1/conversations/{item.conversation_id}/messages")
    media = page["items"][0]["media"][0]

    assert media["content_type"] == content_type  # the API still says what the contact sent
    query = parse_qs(urlsplit(media["url"]).query)
    assert query["response-content-type"] == [served_type]
    assert query["response-content-disposition"] == [disposition]
    # moto answers the presigned GET the way S3 does: the overrides become the response's headers.
    served = requests.get(media["url"], timeout=10)
    assert served.status_code == 200 and served.content == body
    assert served.headers["Content-Type"] == served_type
    assert served.headers["Content-Disposition"] == disposition
