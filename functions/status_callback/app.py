"""Twilio status callbacks for our outbound messages: POST /webhooks/twilio/status (DESIGN §2 Webhooks).

Signed like inbound webhooks; statuses move forward only, and a status for a message whose provider id is not
recorded yet is parked and merged when the send records it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.domain.errors import DomainError, InvalidSignature
from gateway.http.webhook import WebhookRequest, error_answer, server_error, twiml
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
    try:
        request = WebhookRequest.from_event(event, max_body_bytes=MAX_BODY_BYTES)
        outcome = service().receive_status(request)
    except DomainError as error:
        metrics.add_metric(name="TwilioStatusRejected", unit="Count", value=1)
        if isinstance(error, InvalidSignature):  # the signature-failure alarm's metric (template.yaml)
            metrics.add_metric(name="InvalidSignature", unit="Count", value=1)
        logger.warning("twilio status callback rejected", extra={"code": error.code, "reason": error.message})
        return error_answer(error)
    except Exception:
        metrics.add_metric(name="TwilioStatusFailed", unit="Count", value=1)
        logger.exception("twilio status callback failed")
        return server_error()
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
