"""Auto-replies go out through the provider interface, and Prism serving the official specs (``--errors``)
accepts them: a request off the spec would be answered 422, stored as a ``failed`` reply, and fail these tests.

The inbound processor's service runs against moto; the provider adapters point at Prism.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.bootstrap import ready
from gateway.config import Settings, get_settings
from gateway.domain import ids
from gateway.domain.channel import AutoReplyConfig, Channel
from gateway.domain.contact import ContactRef
from gateway.domain.message import InboundMessage
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider
from gateway.services.channels import ChannelPatch, ChannelService, MetaChannelIn, TwilioChannelIn
from gateway.services.inbound import InboundProcessor
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import MessageModel

from local import TEMPLATE_PATH
from local.template import load_template
from local.testing import provisioned_moto

pytestmark = pytest.mark.contract

PUBLIC_BASE_URL = "https://gateway.example.test"
CONTACT = "+14155550100"
AUTO_REPLY = AutoReplyConfig(mode="on", rules=[{"keywords": ["price"], "reply": "Prices: example.com/p"}],
                             fallback="We will get back to you.")


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with provisioned_moto(load_template(TEMPLATE_PATH), monkeypatch, parameters={"PublicBaseUrl": PUBLIC_BASE_URL}):
        get_settings.cache_clear()
        ready()
        yield
    get_settings.cache_clear()


def _reply_to(processor: InboundProcessor, channel: Channel, provider_message_id: str, text: str) -> MessageModel:
    message = InboundMessage(provider=channel.provider.value, provider_message_id=provider_message_id,
                             contact=ContactRef(phone=CONTACT), type="text", text=text)
    message_id = MessageRepository().record_inbound(channel, message)
    conversation_id = ids.conversation_id(channel.tenant_id, channel.channel_id, CONTACT)
    items = list(MessageModel.query(MessageModel.partition(channel.tenant_id, conversation_id)))
    (inbound,) = [m for m in items if m.message_id == message_id]

    assert processor.process_inbound(inbound.pk, inbound.sk) == "processed"

    (reply,) = [m for m in MessageModel.query(MessageModel.partition(channel.tenant_id, conversation_id))
                if m.direction == "outbound"]
    return reply


def _with_auto_reply(channel: Channel) -> Channel:
    return ChannelService().update(channel.tenant_id, channel.channel_id, ChannelPatch(auto_reply=AUTO_REPLY))


def test_twilio_auto_reply_matches_the_twilio_spec(stack: None, prism_twilio: str) -> None:
    settings = Settings.from_env().model_copy(update={"twilio_api_base_url": prism_twilio})
    channel = _with_auto_reply(ChannelService().create("acme", TwilioChannelIn(
        provider="twilio", name="Main", phone_number="+14155238886", account_sid="AC" + "0123456789abcdef" * 2,
        auth_token="twilio-token-0123456789")))
    processor = InboundProcessor(settings=settings, providers={"twilio": TwilioProvider(settings)})

    reply = _reply_to(processor, channel, "SM" + "a" * 32, "what is the price?")

    assert reply.status == "sent", reply.error  # Prism accepted the request
    assert re.fullmatch(r"(SM|MM)[0-9a-fA-F]{32}", str(reply.provider_message_id))
    assert reply.sender == {"kind": "auto", "id": "rule:0"} and reply.text == "Prices: example.com/p"


def test_meta_auto_reply_matches_the_meta_spec(stack: None, prism_meta: str) -> None:
    settings = Settings.from_env().model_copy(
        update={"meta_graph_base_url": prism_meta, "meta_graph_api_version": "v23.0"}
    )
    channel = _with_auto_reply(ChannelService().create("acme", MetaChannelIn(
        provider="meta", name="Main", phone_number_id="106540352242922", business_account_id="1234",
        display_phone_number="+15550783881", access_token="EAAG-token-0123456789", app_secret="app-secret-0123")))
    processor = InboundProcessor(settings=settings, providers={"meta": MetaProvider(settings)})

    reply: Any = _reply_to(processor, channel, "wamid.inbound-1", "hello there")

    assert reply.status == "sent", reply.error
    assert str(reply.provider_message_id).startswith("wamid.")
    assert reply.sender == {"kind": "auto", "id": "fallback"} and reply.text == "We will get back to you."
