"""Twilio status callbacks for our outbound messages: POST /webhooks/twilio/status (DESIGN §2 Webhooks).

Signed like inbound webhooks; statuses move forward only, and a status for a message whose provider id is not
recorded yet is parked and merged when the send records it.
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
    return answer("twilio status callback", rejected="TwilioStatusRejected", failed="TwilioStatusFailed",
                  handle=lambda: _receive(event))


def _receive(event: dict[str, Any]) -> dict[str, Any]:
    outcome = service().receive_status(WebhookRequest.from_event(event, max_body_bytes=MAX_BODY_BYTES))
    metrics.add_metric(name=f"TwilioStatus{outcome.result.capitalize()}", unit="Count", value=1)
    logger.info(
        "twilio status callback",
        extra={
            "tenant_id": outcome.channel.tenant_id,
            "channel_id": outcome.channel.channel_id,
            "provider_message_id": outcome.provider_message_id,
            "status": outcome.status,
            "result": outcome.result,
        },
    )
    return twiml()
