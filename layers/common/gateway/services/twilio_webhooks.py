"""Twilio's two webhooks: inbound messages and status callbacks (DESIGN §2 Webhooks, PROTOCOLS §1-4).

Order of checks, the same for both:
1. the body must be a form (400),
2. the channel is the active one owning our number (``To`` for messages, ``From`` for statuses) and
   ``AccountSid`` must be its account (404 otherwise: a disabled channel answers as unknown),
3. the signature must be valid for the channel's auth token and its public URL (401; fail closed: no token, no
   signature, no channel → never accepted),
4. only then is the content normalized (400) and stored.

The tenant comes only from the resolved channel. Warm, this costs one DynamoDB request (the store) and no KMS
call: routes and decrypted tokens are cached by IngestService. The cache cannot make a disabled channel accept
messages or statuses (the store's transaction re-checks the number's claim) nor lock out a rotated token (a
signature that fails against the cached channel is retried once against a fresh read).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import Settings, get_settings
from gateway.domain import ids
from gateway.domain.channel import Channel, route_key_twilio
from gateway.domain.errors import ChannelNotFound, InvalidSignature
from gateway.http.webhook import WebhookRequest, public_url
from gateway.providers import twilio_webhook as tw
from gateway.services.ingest import IngestService

INBOUND_PATH = "/webhooks/twilio"
STATUS_PATH = "/webhooks/twilio/status"
REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class InboundOutcome:
    channel: Channel
    provider_message_id: str
    message_id: str | None  # None: a redelivery, nothing changed
    type: str

    @property
    def duplicate(self) -> bool:
        return self.message_id is None


@dataclass(frozen=True)
class StatusOutcome:
    channel: Channel
    provider_message_id: str
    status: str | None  # None: a provider status outside the contract's vocabulary, ignored
    result: str  # applied | stale | parked | ignored


@dataclass
class TwilioWebhooks:
    ingest: IngestService = field(default_factory=IngestService)
    settings: Settings = field(default_factory=get_settings)
    clock: Callable[[], float] = time.monotonic
    _refreshed_at: dict[str, float] = field(default_factory=dict, repr=False)

    def receive_message(self, request: WebhookRequest) -> InboundOutcome:
        params = tw.parse_form(request.body)
        channel, route_key = self._channel(params, "To")
        channel = self._verify(channel, route_key, request, params, INBOUND_PATH)
        message = tw.parse_inbound(params)
        message_id = self.ingest.store_message(channel, message, route_key=route_key)
        return InboundOutcome(channel, message.provider_message_id, message_id, message.type)

    def receive_status(self, request: WebhookRequest) -> StatusOutcome:
        params = tw.parse_form(request.body)
        channel, route_key = self._channel(params, "From")
        channel = self._verify(channel, route_key, request, params, STATUS_PATH)
        update = tw.parse_status(params, ids.iso(ids.utcnow()))
        if update is None:
            return StatusOutcome(channel, tw.message_sid(params), None, "ignored")
        result = self.ingest.apply_status(channel, update, route_key=route_key)
        return StatusOutcome(channel, update.provider_message_id, update.status, result)

    # ------------------------------------------------------------------ checks
    def _channel(self, params: tw.FormParams, address: str) -> tuple[Channel, str]:
        route_key = route_key_twilio(tw.contact_address(params, address))
        channel = self.ingest.channel_for(route_key)
        if channel is None:
            raise ChannelNotFound(f"No active channel for the WhatsApp number in {address}.")
        return self._same_account(channel, params, address), route_key

    @staticmethod
    def _same_account(channel: Channel, params: tw.FormParams, address: str) -> Channel:
        if not channel.account_sid or params.value("AccountSid") != channel.account_sid:
            raise ChannelNotFound(f"The number in {address} is not connected for this AccountSid.")
        return channel

    def _signed(self, channel: Channel, url: str, params: tw.FormParams, signature: str) -> bool:
        token = self.ingest.secrets(channel).get("auth_token")
        return tw.signature_valid(token, url, params, signature)

    def _verify(
        self, channel: Channel, route_key: str, request: WebhookRequest, params: tw.FormParams, route_path: str
    ) -> Channel:
        signature = request.header(tw.SIGNATURE_HEADER)
        if not signature:
            raise InvalidSignature("The X-Twilio-Signature header is missing.")
        url = public_url(self.settings, request, route_path)
        if self._signed(channel, url, params, signature):
            return channel
        # The channel came from the warm cache: its auth token may have been rotated since. Read it afresh (at
        # most once per REFRESH_SECONDS per number, so that bad signatures cannot each cost a read) and retry.
        fresh = self._refreshed(route_key)
        if fresh is not None and fresh.credentials_ciphertext != channel.credentials_ciphertext:
            fresh = self._same_account(fresh, params, "To" if route_path == INBOUND_PATH else "From")
            if self._signed(fresh, url, params, signature):
                return fresh
        raise InvalidSignature("The X-Twilio-Signature does not match this request.")

    def _refreshed(self, route_key: str) -> Channel | None:
        now = self.clock()
        if now - self._refreshed_at.get(route_key, float("-inf")) < REFRESH_SECONDS:
            return None
        if len(self._refreshed_at) > 4096:
            self._refreshed_at.clear()
        self._refreshed_at[route_key] = now
        self.ingest.channels.forget([route_key])
        return self.ingest.channel_for(route_key)
