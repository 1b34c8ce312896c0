"""Inbox API: a tenant's conversations and their messages."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.http.resolver import current_identity, make_resolver
from gateway.http.schemas import ConversationOut, ConversationPageOut, MessagePageOut, json_response_doc
from gateway.observability import logger, metrics
from gateway.services.inbox import ConversationPatch, InboxService

app = make_resolver()
ConversationId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]


@lru_cache(maxsize=1)
def service() -> InboxService:
    ready()
    return InboxService()


@app.get("/v1/conversations",
         responses={200: json_response_doc("Conversations, most recent activity first", ConversationPageOut)})
def list_conversations(limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    identity = current_identity(app)
    return service().list_conversations(identity.tenant_id, limit, cursor)


@app.get("/v1/conversations/<id>", responses={200: json_response_doc("The conversation", ConversationOut)})
def get_conversation(id: ConversationId) -> dict[str, Any]:
    identity = current_identity(app)
    return service().get_conversation(identity.tenant_id, id)


@app.patch("/v1/conversations/<id>", responses={200: json_response_doc("The conversation", ConversationOut)})
def update_conversation(id: ConversationId, body: Annotated[ConversationPatch, Body()]) -> dict[str, Any]:
    identity = current_identity(app)
    return service().update_conversation(identity.tenant_id, id, body)


@app.get("/v1/conversations/<id>/messages",
         responses={200: json_response_doc("The conversation's messages, newest first", MessagePageOut)})
def list_messages(id: ConversationId, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    identity = current_identity(app)
    return service().list_messages(identity.tenant_id, id, limit, cursor)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
