"""Twilio inbound WhatsApp messages: POST /webhooks/twilio (DESIGN §2 Webhooks).

Verify, store with one transaction, answer empty TwiML. Everything slow happens in inbound_processor.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.http.webhook import WebhookRequest, answer, twiml
from gateway.observability import logger, metrics
from gateway.providers.twilio_webhook import MAX_BODY_BYTES
from gateway.services.twilio_webhooks import TwilioWebhooks


@lru_cache(maxsize=1)
def service() -> TwilioWebhooks:
    ready()
    return TwilioWebhooks()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer("twilio webhook", rejected="TwilioWebhookRejected", failed="TwilioWebhookFailed",
                  handle=lambda: _receive(event))


def _receive(event: dict[str, Any]) -> dict[str, Any]:
    outcome = service().receive_message(WebhookRequest.from_event(event, max_body_bytes=MAX_BODY_BYTES))
    metrics.add_metric(name="TwilioDuplicate" if outcome.duplicate else "TwilioMessageStored", unit="Count", value=1)
    logger.info(
        "twilio message duplicate" if outcome.duplicate else "twilio message stored",
        extra={
            "tenant_id": outcome.channel.tenant_id,
            "channel_id": outcome.channel.channel_id,
            "provider_message_id": outcome.provider_message_id,
            "message_id": outcome.message_id,
            "type": outcome.type,
        },
    )
    return twiml()
