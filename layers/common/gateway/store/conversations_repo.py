"""Contacts and conversations: reads for the inbox, small conditional updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from gateway.domain.errors import ConversationNotFound
from gateway.store.models import ConversationModel, tenant_pk
from gateway.store.pagination import decode_cursor, encode_cursor


@dataclass
class Page[T]:
    items: list[T]
    next_cursor: str | None


class ConversationRepository:
    def get(self, tenant_id: str, conversation_id: str) -> ConversationModel:
        try:
            return ConversationModel.get(*ConversationModel.key(tenant_id, conversation_id), consistent_read=True)
        except DoesNotExist as error:
            raise ConversationNotFound(f"No conversation {conversation_id}.") from error

    def list_by_activity(self, tenant_id: str, limit: int, cursor: str | None) -> Page[ConversationModel]:
        start = decode_cursor(
            cursor,
            partition_attr="gsi1pk",
            partition_value=tenant_pk(tenant_id),
            other_keys={"gsi1sk": "", "pk": tenant_pk(tenant_id), "sk": "CONV#"},  # an index's start key: both keys
        )
        result = ConversationModel.by_activity.query(
            tenant_pk(tenant_id),
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
        )
        items = list(result)
        return Page(items, encode_cursor(result.last_evaluated_key) if len(items) == limit else None)

    def update(self, tenant_id: str, conversation_id: str, actions: list[Any]) -> ConversationModel:
        item = ConversationModel(*ConversationModel.key(tenant_id, conversation_id))
        try:
            item.update(actions=actions, condition=ConversationModel.pk.exists())
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise ConversationNotFound(f"No conversation {conversation_id}.") from error
            raise
        return item
