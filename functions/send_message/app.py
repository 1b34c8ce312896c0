"""Send API: the tenant's frontend sends a message into a conversation (services.send has the rules)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.http.resolver import current_identity, make_resolver, public_base_url
from gateway.http.schemas import MessageOut, error_response_doc
from gateway.observability import logger, metrics
from gateway.services.send import SendMessageIn, SendService

app = make_resolver()
ConversationId = Annotated[str, Path(min_length=1, max_length=64)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key and body within 24 h → the first answer again, nothing sent twice; "
        "same key with another body → 409 idempotency_conflict.",
    ),
]


@lru_cache(maxsize=1)
def service() -> SendService:
    ready()
    return SendService()


@app.post(
    "/v1/conversations/<id>/messages",
    summary="Send a message into a conversation",
    description="Text, media by link, templates (allowed outside the 24-hour window), and on Meta channels "
    "reactions and read receipts. 201 with the stored message (status `sent`: the provider accepted it).",
    response_description="The message, accepted by the provider",
    responses={
        200: {
            "description": "Read receipt sent (type `read`): the message marked as read",
            "content": {"application/json": {"model": MessageOut}},
        },
        201: {
            "description": "Sent: the provider accepted the message",
            "content": {"application/json": {"model": MessageOut}},
        },
        404: error_response_doc("conversation_not_found (also for another tenant's conversation)"),
        409: error_response_doc("idempotency_conflict | idempotency_in_progress | channel_disabled"),
        422: error_response_doc(
            "validation_error | outside_customer_service_window | provider_rejected (message stored failed)"
        ),
        502: error_response_doc("provider_unavailable: transient errors until the retries ran out, or no answer"),
    },
)
def send_message(
    id: ConversationId,
    body: Annotated[SendMessageIn, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[dict[str, Any]]:
    identity = current_identity(app)
    svc = service()
    result = svc.send(
        identity.tenant_id,
        identity.subject,
        id,
        body,
        public_base_url=public_base_url(app, svc.settings),
        idempotency_key=idempotency_key,
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return Response(status_code=result.status_code, body=result.body, content_type="application/json", headers=headers)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
