"""Meta's webhook: the verification handshake and signed notifications (DESIGN §2 Webhooks, PROTOCOLS §7-9).

Verification GET: ``hub.mode=subscribe``, a verify token claimed by an active Meta channel (fresh read, no
cache: it must see a channel created a second ago) and a plain-token challenge → the challenge; anything else
is Forbidden. ``webhook_verified_at`` is recorded on the channel.

Notification POST, in this order (docs/decisions.md D8):
1. the body is bounded (413, in ``WebhookRequest``) and ``X-Hub-Signature-256`` must be ``sha256=<64 hex>``
   (401);
2. when the deployment has a global ``META_APP_SECRET`` the raw bytes are checked against it before anything
   is parsed;
3. the JSON is parsed and its shape checked (400 before anything is stored). Without a global secret this
   has to come before the signature: which secret applies is known only from the notification's
   ``metadata.phone_number_id`` values;
4. every phone number id is resolved to its active channel (cached while warm);
5. unless the global secret verified the bytes, the signature must verify under the app secret of EVERY
   channel the notification names (a secret stored for one tenant's channel cannot vouch for another tenant's
   number), and at least one channel must be known: no secret of ours → 401, fail closed. Steps 4 and 5 go
   together, number by number: the first failure ends them, and until a secret has verified the bytes at most
   MAX_UNKNOWN_BEFORE_VERIFIED unknown numbers are looked up;
6. every entry × change × message/status is stored, each write re-checking that the number is still claimed
   by its channel (a channel disabled while cached is from then on an unknown number); unknown numbers, Meta's
   ``errors``, other fields and unusable items are reported and counted, and the answer is still 200 so Meta
   does not retry them. Storage trouble propagates (5xx: Meta retries, and the conditional writes make the
   retry harmless).

The tenant comes only from the channel resolved from the verified notification.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from gateway.config import Settings, get_settings
from gateway.domain import ids
from gateway.domain.channel import Channel, Provider, route_key_meta, route_key_verify
from gateway.domain.errors import BadRequest, ChannelNotFound, Forbidden, InvalidSignature
from gateway.http.webhook import WebhookRequest
from gateway.observability import logger
from gateway.providers import meta_webhook as mw
from gateway.services.ingest import IngestService

# Meta batches per WABA; no genuine notification speaks for more numbers than this.
MAX_PHONE_NUMBER_IDS = 100
# Unknown numbers looked up (one read each) before any signature has verified; more, and the request is refused.
MAX_UNKNOWN_BEFORE_VERIFIED = 10
_HUB_PARAMS = ("hub.mode", "hub.verify_token", "hub.challenge")


@dataclass
class Receipt:
    """What one notification did; the handler turns it into metrics and the answer's summary."""

    stored: int = 0
    duplicates: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # applied | stale | parked | ignored
    rejected_items: int = 0
    provider_errors: int = 0
    unknown_phone_number_ids: list[str] = field(default_factory=list)
    other_fields: Counter[str] = field(default_factory=Counter)
    channels: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, object]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "statuses": dict(self.statuses),
            "rejected_items": self.rejected_items,
            "provider_errors": self.provider_errors,
            "unknown_phone_numbers": len(self.unknown_phone_number_ids),
            "other_fields": sum(self.other_fields.values()),
        }


def query_params(raw_query: str, fallback: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``hub.*`` parameters from the raw query string. A repeated ``hub.*`` parameter is refused (403):
    API Gateway would have comma-joined it, and which value Meta meant is not ours to guess."""
    if not raw_query:
        return {k: v for k, v in (fallback or {}).items() if k in _HUB_PARAMS}
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name in _HUB_PARAMS:
            if name in params:
                raise Forbidden(f"The {name} parameter is repeated.")
            params[name] = value
    return params


@dataclass
class MetaWebhooks:
    ingest: IngestService = field(default_factory=IngestService)
    settings: Settings = field(default_factory=get_settings)

    # ------------------------------------------------------------------ GET /webhooks/meta
    def verify_subscription(self, params: Mapping[str, str]) -> tuple[str, Channel]:
        """The challenge to answer with, and the channel whose verify token matched. Forbidden otherwise."""
        request = mw.subscription_request(params)
        if request is None:
            raise Forbidden("Not a valid subscription request (hub.mode, hub.verify_token, hub.challenge).")
        token, challenge = request
        key = route_key_verify(token)
        self.ingest.channels.forget([key])  # rare and interactive: always read the claim afresh
        channel = self.ingest.channel_for(key)
        if (
            channel is None
            or channel.provider is not Provider.META
            or not hmac.compare_digest((channel.verify_token or "").encode(), token.encode())
        ):
            raise Forbidden("The verify token does not belong to an active Meta channel.")
        self.ingest.channels.mark_webhook_verified(channel, ids.iso(ids.utcnow()))
        return challenge, channel

    # ------------------------------------------------------------------ POST /webhooks/meta
    def receive(self, request: WebhookRequest) -> Receipt:
        digest = mw.parse_signature(request.header(mw.SIGNATURE_HEADER))
        if digest is None:
            raise InvalidSignature("The X-Hub-Signature-256 header is missing or is not 'sha256=<hex>'.")
        body = request.body
        by_global = mw.signature_valid(body, digest, self.settings.meta_app_secret)
        notification = mw.parse_notification(body)
        numbers = notification.phone_number_ids
        if len(numbers) > MAX_PHONE_NUMBER_IDS:
            raise BadRequest(f"The notification names more than {MAX_PHONE_NUMBER_IDS} phone numbers.")
        return self._process(notification, self._channels(numbers, body, digest, verified=by_global))

    def _channels(self, numbers: list[str], body: bytes, digest: bytes, *, verified: bool) -> dict[str, Channel | None]:
        """Each number's active channel (None: unknown), authenticated as they are found (docs/decisions.md D8).

        Unless ``verified`` (the deployment's secret vouched for the bytes), the bytes must verify under the
        secret bound to every known channel named (its own app secret, else the deployment's), the first failure
        ends the lookups, and at least one channel must be known. Until a secret has verified them, at most
        MAX_UNKNOWN_BEFORE_VERIFIED unknown numbers are looked up: unsigned noise costs a few reads, not one per
        number named. One answer for every failure: nothing tells a forger which numbers exist.
        """
        channels: dict[str, Channel | None] = {}
        verdicts: dict[str, bool] = {}  # secret → whether the bytes verify under it
        proven, unknown = verified, 0
        for number in numbers:
            if not proven and unknown >= MAX_UNKNOWN_BEFORE_VERIFIED:
                raise InvalidSignature("The X-Hub-Signature-256 does not match this payload.")
            channel = channels[number] = self.ingest.channel_for(route_key_meta(number))
            if channel is None:
                unknown += 1
                continue
            if verified:
                continue
            secret = self.ingest.secrets(channel).get("app_secret") or self.settings.meta_app_secret
            if secret not in verdicts:
                verdicts[secret] = mw.signature_valid(body, digest, secret)
            if not verdicts[secret]:
                raise InvalidSignature("The X-Hub-Signature-256 does not match this payload.")
            proven = True
        if not proven:
            raise InvalidSignature("The X-Hub-Signature-256 does not match this payload.")
        return channels

    def _process(self, notification: mw.Notification, channels: dict[str, Channel | None]) -> Receipt:
        receipt = Receipt()
        if not notification.whatsapp:
            receipt.other_fields[f"object:{notification.object}"] += 1
        now = ids.iso(ids.utcnow())
        for change in notification.changes:
            if change.field != mw.MESSAGES_FIELD:
                receipt.other_fields[change.field] += 1
                continue
            number = change.phone_number_id or ""
            channel = channels.get(number)
            content = mw.normalize_change(change.value, now=now)
            if channel is None:
                self._unknown(number, content, receipt)
                continue
            receipt.channels.add(channel.channel_id)
            self._report(channel, content, receipt)
            try:
                self._store(channel, route_key_meta(number), content, receipt)
            except ChannelNotFound:  # disabled since this instance cached it: unknown from now on
                channels[number] = None
                self._unknown(number, content, receipt)
        return receipt

    def _store(self, channel: Channel, route_key: str, content: mw.ChangeContent, receipt: Receipt) -> None:
        for message in content.messages:
            if self.ingest.store_message(channel, message, route_key=route_key) is None:
                receipt.duplicates += 1
            else:
                receipt.stored += 1
        for update in content.statuses:
            receipt.statuses[self.ingest.apply_status(channel, update, route_key=route_key)] += 1
        if content.ignored_statuses:
            receipt.statuses["ignored"] += len(content.ignored_statuses)

    @staticmethod
    def _unknown(number: str, content: mw.ChangeContent, receipt: Receipt) -> None:
        receipt.unknown_phone_number_ids.append(number)
        logger.warning(
            "meta notification for an unknown phone number",
            extra={"phone_number_id": number, "messages": len(content.messages), "statuses": len(content.statuses)},
        )

    @staticmethod
    def _report(channel: Channel, content: mw.ChangeContent, receipt: Receipt) -> None:
        where = {"tenant_id": channel.tenant_id, "channel_id": channel.channel_id}
        for error in content.errors:
            receipt.provider_errors += 1
            logger.warning("meta reported an error", extra={**where, "error": error})
        if content.rejected:
            receipt.rejected_items += len(content.rejected)
            logger.warning("meta items skipped", extra={**where, "reasons": content.rejected[:20]})
        if content.ignored_statuses:
            logger.info("meta statuses ignored", extra={**where, "statuses": content.ignored_statuses[:20]})
