"""Meta WhatsApp Cloud API webhook: GET (verification) and POST (notifications) /webhooks/meta (DESIGN §2).

Verify, store each message/status with its one conditional write, answer 200. Slow work happens in
inbound_processor. The logic lives in gateway.services.meta_webhooks; this maps it to HTTP.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.http.webhook import WebhookRequest, answer
from gateway.observability import logger, metrics
from gateway.providers.meta_webhook import MAX_BODY_BYTES
from gateway.services.meta_webhooks import MetaWebhooks, Receipt, query_params

_STATUS_METRICS = {
    "applied": "MetaStatusApplied",
    "stale": "MetaStatusStale",
    "parked": "MetaStatusParked",
    "ignored": "MetaStatusIgnored",
}


@lru_cache(maxsize=1)
def service() -> MetaWebhooks:
    ready()
    return MetaWebhooks()


def _verify(request: WebhookRequest, event: dict[str, Any]) -> dict[str, Any]:
    challenge, channel = service().verify_subscription(
        query_params(request.raw_query, event.get("queryStringParameters"))
    )
    metrics.add_metric(name="MetaWebhookVerified", unit="Count", value=1)
    logger.info("meta webhook verified", extra={"tenant_id": channel.tenant_id, "channel_id": channel.channel_id})
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        "body": challenge,
    }


def _receive(request: WebhookRequest) -> dict[str, Any]:
    receipt = service().receive(request)
    _count(receipt)
    logger.info(
        "meta notification handled",
        extra={
            "channels": sorted(receipt.channels),
            "other_fields": dict(receipt.other_fields),
            "notices": dict(receipt.notices),
            **receipt.summary(),
        },
    )
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"received": True, **receipt.summary()}),
    }


def _count(receipt: Receipt) -> None:
    metrics.add_metric(name="MetaNotification", unit="Count", value=1)
    counts = {
        "MetaMessageStored": receipt.stored,
        "MetaDuplicate": receipt.duplicates,
        "MetaItemRejected": receipt.rejected_items,
        "MetaProviderError": receipt.provider_errors,
        "MetaUnknownPhoneNumber": len(receipt.unknown_phone_number_ids),
        "MetaOtherField": sum(receipt.other_fields.values()),
        "MetaNotice": sum(receipt.notices.values()),
        "MetaAmendment": sum(receipt.amendments.values()),
    }
    counts |= {_STATUS_METRICS[k]: v for k, v in receipt.statuses.items() if k in _STATUS_METRICS}
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit="Count", value=value)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A 5xx makes Meta retry (for 7 days); the conditional writes make the retry harmless.
    return answer("meta webhook", rejected="MetaWebhookRejected", failed="MetaWebhookFailed",
                  handle=lambda: _route(event))


def _route(event: dict[str, Any]) -> dict[str, Any]:
    request = WebhookRequest.from_event(event, max_body_bytes=MAX_BODY_BYTES)
    if request.method == "GET":
        return _verify(request, event)
    if request.method != "POST":
        metrics.add_metric(name="MetaWebhookRejected", unit="Count", value=1)
        return {"statusCode": 405, "headers": {"Allow": "GET, POST"}, "body": ""}
    return _receive(request)
