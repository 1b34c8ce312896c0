"""Every send type of both adapters, sent to Prism serving the official specs with ``--errors``.

A request that does not match the spec (path, auth, content type, body schema) makes Prism answer 422, which the
adapters raise as a provider rejection, so the send would answer 422 ``provider_rejected`` and these tests
fail. The sends go through the real send service against moto, so they also show that the stored message
carries the provider id Prism answered with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from gateway.bootstrap import ready
from gateway.config import Settings, get_settings
from gateway.domain import ids
from gateway.domain.channel import Channel
from gateway.domain.contact import ContactRef
from gateway.domain.message import InboundMessage
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider
from gateway.services.channels import ChannelService, MetaChannelIn, TwilioChannelIn
from gateway.services.send import SendMessageIn, SendService
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import MessageModel
from pydantic import TypeAdapter

from local import TEMPLATE_PATH
from local.template import load_template
from local.testing import provisioned_moto

pytestmark = pytest.mark.contract

PUBLIC_BASE_URL = "https://gateway.example.test"
META_SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "meta-business-messaging-api_v23.0.yaml"
CONTACT = "+14155550100"
BODIES = TypeAdapter(SendMessageIn)
MEDIA = {
    "image": {"media_url": "https://example.com/photo.jpg", "caption": "A photo"},
    "document": {"media_url": "https://example.com/invoice.pdf", "caption": "Invoice", "filename": "invoice.pdf"},
    "audio": {"media_url": "https://example.com/voice.ogg"},
    "video": {"media_url": "https://example.com/clip.mp4", "caption": "A clip"},
}
COMMON_BODIES: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Hello from the gateway", "preview_url": False},
    "text-preview": {"type": "text", "text": "See https://example.com", "preview_url": True},
    **{kind: {"type": kind, **fields} for kind, fields in MEDIA.items()},
}
TWILIO_BODIES = {
    **COMMON_BODIES,
    "template": {"type": "template",
                 "template": {"content_sid": "HX" + "0123456789abcdef" * 2, "variables": {"1": "Zoë", "2": "42"}}},
}
META_BODIES = {
    **COMMON_BODIES,
    "template": {"type": "template", "template": {
        "name": "order_update", "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
    }},
    "template-no-components": {"type": "template", "template": {"name": "hello_world", "language": "en_US"}},
    "reaction": {"type": "reaction", "message_id": "wamid.inbound", "emoji": "👍"},
}


class PrismFormArrays(requests.Session):
    """Prism reads form-encoded arrays only in the ``name[]=`` convention and answers 422 "must be array" to the
    OpenAPI default (``style: form, explode: true``: repeated ``MediaUrl=`` keys), which is what Twilio itself
    expects (stoplightio/prism#2473, open). This session renames the one array field on the way to Prism; every
    other field and the value itself are still checked against the spec. The adapter sends ``MediaUrl`` (see
    tests/unit/test_send_providers.py)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        data = kwargs.get("data")
        if isinstance(data, list):
            kwargs["data"] = [(f"{k}[]" if k == "MediaUrl" else k, v) for k, v in data]
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with the template's tables and key (the same helper the integration fixtures use)."""
    with provisioned_moto(load_template(TEMPLATE_PATH), monkeypatch, parameters={"PublicBaseUrl": PUBLIC_BASE_URL}):
        get_settings.cache_clear()
        ready()
        yield
    get_settings.cache_clear()


def _conversation(channel: Channel, provider_message_id: str) -> str:
    message = InboundMessage(provider=channel.provider.value, provider_message_id=provider_message_id,
                             contact=ContactRef(phone=CONTACT), type="text", text="Hi")
    MessageRepository().record_inbound(channel, message, now=ids.iso(ids.utcnow() - timedelta(minutes=5)))
    return ids.conversation_id(channel.tenant_id, channel.channel_id, CONTACT)


def _send(svc: SendService, conversation_id: str, body: dict[str, Any]) -> Any:
    return svc.send("acme", "operator-1", conversation_id, BODIES.validate_python(body),
                    public_base_url=PUBLIC_BASE_URL)


def _stored(conversation_id: str, message_id: str) -> MessageModel:
    [item] = [m for m in MessageModel.query(MessageModel.partition("acme", conversation_id))
              if m.message_id == message_id]
    return item


@pytest.mark.parametrize("case", sorted(TWILIO_BODIES))
def test_twilio_sends_match_the_twilio_spec(stack: None, prism_twilio: str, case: str) -> None:
    settings = Settings.from_env().model_copy(update={"twilio_api_base_url": prism_twilio})
    channel = ChannelService().create("acme", TwilioChannelIn(
        provider="twilio", name="Main", phone_number="+14155238886", account_sid="AC" + "0123456789abcdef" * 2,
        auth_token="twilio-token-0123456789"))
    conversation_id = _conversation(channel, "SM" + "a" * 32)
    svc = SendService(settings=settings, providers={"twilio": TwilioProvider(settings, PrismFormArrays())})

    result = _send(svc, conversation_id, TWILIO_BODIES[case])

    assert result.status_code == 201, json.dumps(result.body)  # a 422 from Prism would be a provider_rejected
    assert re.fullmatch(r"(SM|MM)[0-9a-fA-F]{32}", result.body["provider_message_id"])
    item = _stored(conversation_id, result.body["id"])
    assert item.provider_message_id == result.body["provider_message_id"] and item.status == "sent"


@pytest.mark.parametrize("case", sorted(META_BODIES))
def test_meta_sends_match_the_meta_spec(stack: None, prism_meta: str, case: str) -> None:
    settings = Settings.from_env().model_copy(
        update={"meta_graph_base_url": prism_meta, "meta_graph_api_version": "v23.0"}
    )
    channel = ChannelService().create("acme", MetaChannelIn(
        provider="meta", name="Main", phone_number_id="106540352242922", business_account_id="1234",
        display_phone_number="+15550783881", access_token="EAAG-token-0123456789", app_secret="app-secret-0123"))
    conversation_id = _conversation(channel, "wamid.inbound")
    svc = SendService(settings=settings, providers={"meta": MetaProvider(settings)})

    result = _send(svc, conversation_id, META_BODIES[case])

    assert result.status_code == 201, json.dumps(result.body)
    assert result.body["provider_message_id"].startswith("wamid.")
    item = _stored(conversation_id, result.body["id"])
    assert item.provider_message_id == result.body["provider_message_id"] and item.status == "sent"


def test_meta_read_receipt_has_the_shape_of_the_spec_example() -> None:
    """The spec's ``Message`` schema has no variant for read receipts (Prism answers 422 to its own example), so
    the body is checked against the spec's example "Send typing indicator and read receipt" instead."""
    import yaml

    spec = yaml.safe_load(META_SPEC.read_text())
    examples = spec["paths"]["/{Version}/{Phone-Number-ID}/messages"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]
    example = examples["Send typing indicator and read receipt"]["value"]
    sent: list[dict[str, Any]] = []

    class Recorder(MetaProvider):
        def _post(self, channel: Channel, secrets: Any, payload: dict[str, Any]) -> dict[str, Any]:
            sent.append(payload)
            return {"success": True}

    Recorder(Settings()).mark_read(None, {}, "wamid.HBgL")  # type: ignore[arg-type]

    [body] = sent
    assert set(body) == set(example) - {"typing_indicator"}
    assert body["status"] == example["status"] and body["messaging_product"] == example["messaging_product"]
