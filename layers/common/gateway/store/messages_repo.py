"""Messages: inbound ingestion in ONE transaction, listing newest first."""

from __future__ import annotations

import random
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.channel import Channel
from gateway.domain.message import Direction, InboundMessage
from gateway.store.conversations_repo import Page
from gateway.store.models import (
    ContactModel,
    ConversationModel,
    MessageModel,
    ProviderMessageModel,
    tenant_pk,
    transaction_connection,
)
from gateway.store.pagination import decode_cursor, encode_cursor

_CONFLICT_RETRIES = 5


class MessageRepository:
    def list(self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None) -> Page[MessageModel]:
        partition = MessageModel.partition(tenant_id, conversation_id)
        start = decode_cursor(cursor, partition_attr="pk", partition_value=partition)
        result = MessageModel.query(
            partition,
            MessageModel.sk.startswith("MSG#"),
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
        )
        items = list(result)
        return Page(items, encode_cursor(result.last_evaluated_key) if len(items) == limit else None)

    def record_inbound(self, channel: Channel, message: InboundMessage, *, now: str | None = None) -> str | None:
        """Store an inbound message with its conversation and contact upserts in ONE TransactWriteItems.

        Returns the new message id, or None when the provider message id was already stored (a redelivery),
        in which case nothing at all changed.
        """
        now = now or ids.iso(ids.utcnow())
        tenant = channel.tenant_id
        conversation_id = ids.conversation_id(tenant, channel.channel_id, message.contact_phone)
        message_id = ids.stable_id("msg", tenant, message.provider, message.provider_message_id)
        message_pk = MessageModel.partition(tenant, conversation_id)
        message_sk = MessageModel.sort(now, message_id)

        claim = ProviderMessageModel(
            *ProviderMessageModel.key(tenant, message.provider, message.provider_message_id),
            tenant_id=tenant,
            message_pk=message_pk,
            message_sk=message_sk,
        )
        item = MessageModel(
            message_pk,
            message_sk,
            tenant_id=tenant,
            conversation_id=conversation_id,
            message_id=message_id,
            channel_id=channel.channel_id,
            direction=Direction.INBOUND.value,
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            type=message.type,
            text=message.text,
            media=[m.to_item() for m in message.media],
            location=message.location,
            context=message.context,
            content=message.content,
            status="received",
            sender={"kind": "contact", "id": message.contact_phone},
            created_at=now,
            status_updated_at=now,
        )
        conversation = ConversationModel(*ConversationModel.key(tenant, conversation_id))
        conversation_actions = [
            ConversationModel.tenant_id.set(tenant),
            ConversationModel.conversation_id.set(conversation_id),
            ConversationModel.channel_id.set(channel.channel_id),
            ConversationModel.provider.set(message.provider),
            ConversationModel.contact_phone.set(message.contact_phone),
            ConversationModel.created_at.set(ConversationModel.created_at | now),
            ConversationModel.location_id.set(ConversationModel.location_id | channel.location_id)
            if channel.location_id
            else None,
            ConversationModel.last_message_at.set(now),
            ConversationModel.last_inbound_at.set(now),
            ConversationModel.last_message_preview.set(message.preview()),
            ConversationModel.unread_count.add(1),
            ConversationModel.gsi1pk.set(tenant_pk(tenant)),
            ConversationModel.gsi1sk.set(ConversationModel.activity_key(now, conversation_id)),
            ConversationModel.contact_name.set(message.contact_name) if message.contact_name else None,
        ]
        contact = ContactModel(*ContactModel.key(tenant, message.contact_phone))
        contact_actions = [
            ContactModel.tenant_id.set(tenant),
            ContactModel.phone.set(message.contact_phone),
            ContactModel.created_at.set(ContactModel.created_at | now),
            ContactModel.last_inbound_at.set(now),
            ContactModel.name.set(message.contact_name) if message.contact_name else None,
            ContactModel.wa_id.set(message.wa_id) if message.wa_id else None,
        ]
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with TransactWrite(connection=transaction_connection()) as tx:
                    tx.save(claim, condition=ProviderMessageModel.pk.does_not_exist())
                    tx.save(item)
                    tx.update(conversation, actions=[a for a in conversation_actions if a is not None])
                    tx.update(contact, actions=[a for a in contact_actions if a is not None])
                return message_id
            except TransactWriteError as error:
                codes = [r.code if r is not None else None for r in error.cancellation_reasons]
                if codes and codes[0] == "ConditionalCheckFailed":
                    return None  # the claim exists: a redelivery of a stored message
                if "TransactionConflict" not in codes or attempt == _CONFLICT_RETRIES - 1:
                    raise
                # A concurrent delivery of the same message (or activity in the same conversation) holds the
                # items; the retry either wins or sees the claim and reports a duplicate.
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311 - jitter, not crypto
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ statuses
    def apply_status(self, tenant_id: str, update: st.StatusUpdate) -> str:
        """Apply a provider status report forward-only. Returns ``applied``, ``stale`` or ``parked``.

        ``stale``: the message already has this or a later status (duplicates and out-of-order reports land
        here and change nothing). ``parked``: the message is not known yet (the callback beat the send
        response); the report is kept on the provider-id claim and merged when the send records its id.
        """
        key = ProviderMessageModel.key(tenant_id, update.provider, update.provider_message_id)
        for _ in range(3):
            try:
                claim = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                claim = None
            if claim is not None and claim.message_pk and claim.message_sk:
                return self._update_message_status(claim.message_pk, claim.message_sk, update)
            if self._park(key, tenant_id, update):
                return "parked"
            # The send recorded the message id between our read and the park: go round and apply it.
        return "stale"

    @staticmethod
    def _forward_only(attr_rank: Any, new_status: str) -> Any:
        limit = st.RANK[st.DELIVERED] if new_status == st.FAILED else st.RANK[new_status]
        return attr_rank.does_not_exist() | (attr_rank < limit)

    def _update_message_status(self, message_pk: str, message_sk: str, update: st.StatusUpdate) -> str:
        message = MessageModel(message_pk, message_sk)
        actions: list[Action] = [
            MessageModel.status.set(update.status),
            MessageModel.status_rank.set(st.RANK[update.status]),
            MessageModel.status_updated_at.set(update.at),
        ]
        if update.error is not None:
            actions.append(MessageModel.error.set(update.error))
        if update.details:
            actions.append(MessageModel.status_details.set(update.details))
        condition = MessageModel.pk.exists() & self._forward_only(MessageModel.status_rank, update.status)
        try:
            message.update(actions=actions, condition=condition)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return "stale"
            raise
        return "applied"

    def _park(self, key: tuple[str, str], tenant_id: str, update: st.StatusUpdate) -> bool:
        claim = ProviderMessageModel(*key)
        actions: list[Action] = [
            ProviderMessageModel.tenant_id.set(tenant_id),
            ProviderMessageModel.pending_status.set(update.status),
            ProviderMessageModel.pending_rank.set(st.RANK[update.status]),
            ProviderMessageModel.pending_at.set(update.at),
        ]
        if update.error is not None:
            actions.append(ProviderMessageModel.pending_error.set(update.error))
        if update.details:
            actions.append(ProviderMessageModel.pending_details.set(update.details))
        condition = ProviderMessageModel.message_pk.does_not_exist() & self._forward_only(
            ProviderMessageModel.pending_rank, update.status
        )
        try:
            claim.update(actions=actions, condition=condition)
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            try:
                current = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                return False
            return not current.message_pk  # parked already holds this or a later status
        return True
