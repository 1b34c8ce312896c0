"""Messages: inbound ingestion in ONE transaction, listing newest first."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.channel import Channel
from gateway.domain.errors import ChannelNotFound
from gateway.domain.message import Direction, InboundMessage, MediaRef
from gateway.store.conversations_repo import Page
from gateway.store.models import (
    ContactModel,
    ConversationModel,
    MessageModel,
    ProviderMessageModel,
    RouteModel,
    tenant_pk,
    transaction_connection,
)
from gateway.store.pagination import decode_cursor, encode_cursor

_CONFLICT_RETRIES = 5
# A status parked for a provider id no send of ours has recorded: usually the send's answer arrives a second later
# and removes the TTL with the parked status; statuses of messages other apps sent on the same WhatsApp Business
# Account are never claimed, and DynamoDB's TTL deletes them (docs/decisions.md D1).
PARKED_STATUS_TTL = timedelta(days=7)


@contextmanager
def _transaction(channel: Channel | None = None, route_key: str | None = None) -> Iterator[TransactWrite]:
    """One TransactWriteItems. With ``route_key``, its first item checks that the provider address is still
    claimed by ``channel``: a webhook resolves its channel from a warm cache, and the check makes a channel
    disabled a moment ago refuse at once (ChannelNotFound, nothing written), at no extra request."""
    try:
        with TransactWrite(connection=transaction_connection()) as tx:
            if channel is not None and route_key is not None:
                still_ours = RouteModel.channel_id == channel.channel_id
                tx.condition_check(RouteModel, *RouteModel.key(route_key), condition=still_ours)
            yield tx
    except TransactWriteError as error:
        if route_key is not None and _codes(error)[:1] == ["ConditionalCheckFailed"]:
            raise ChannelNotFound("The channel for this number was disabled.") from error
        raise


def _codes(error: TransactWriteError, *, guarded: bool = False) -> list[str | None]:
    """The cancellation reason of each item, without the route check's when ``guarded``."""
    codes = [r.code if r is not None else None for r in error.cancellation_reasons]
    return codes[1:] if guarded else codes


def _jitter(attempt: int, low: float, high: float) -> None:
    time.sleep(random.uniform(low, high) * (attempt + 1))  # noqa: S311 - jitter, not crypto


class MessageRepository:
    def list(self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None) -> Page[MessageModel]:
        partition = MessageModel.partition(tenant_id, conversation_id)
        start = decode_cursor(cursor, partition_attr="pk", partition_value=partition, other_keys={"sk": "MSG#"})
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

    def record_inbound(
        self, channel: Channel, message: InboundMessage, *, now: str | None = None, route_key: str | None = None
    ) -> str | None:
        """Store an inbound message with its conversation and contact upserts in ONE TransactWriteItems.

        Returns the new message id, or None when the provider message id was already stored (a redelivery),
        in which case nothing at all changed.

        ``route_key``: also check, in the same transaction, that this provider address is still claimed by the
        channel. A webhook resolves its channel from a warm cache; the check makes a channel disabled a moment
        ago refuse messages at once (ChannelNotFound, nothing stored) at no extra request.
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
                with _transaction(channel, route_key) as tx:
                    tx.save(claim, condition=ProviderMessageModel.pk.does_not_exist())
                    tx.save(item)
                    tx.update(conversation, actions=[a for a in conversation_actions if a is not None])
                    tx.update(contact, actions=[a for a in contact_actions if a is not None])
                return message_id
            except TransactWriteError as error:
                codes = _codes(error, guarded=route_key is not None)
                if codes and codes[0] == "ConditionalCheckFailed":
                    return None  # the claim exists: a redelivery of a stored message
                if "TransactionConflict" not in codes or attempt == _CONFLICT_RETRIES - 1:
                    raise
                # A concurrent delivery of the same message (or activity in the same conversation) holds the
                # items; the retry either wins or sees the claim and reports a duplicate.
                _jitter(attempt, 0.005, 0.02)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ outbound
    def record_outbound(
        self,
        channel: Channel,
        *,
        conversation_id: str,
        type: str,
        sender: dict[str, Any],
        text: str | None = None,
        media: Sequence[MediaRef] = (),
        content: dict[str, Any] | None = None,
        message_id: str | None = None,
        now: str | None = None,
        status: str = st.QUEUED,
    ) -> MessageModel:
        """Store an outbound message as ``queued`` before the provider is called (one conditional PutItem).

        The provider id is not known yet; ``attach_provider_id`` records it once the provider accepted the send.
        ``status="suggested"``: an auto-reply in shadow mode, stored but never sent (no status rank).
        """
        now = now or ids.iso(ids.utcnow())
        message_id = message_id or ids.new_id("msg")
        item = MessageModel(
            MessageModel.partition(channel.tenant_id, conversation_id),
            MessageModel.sort(now, message_id),
            tenant_id=channel.tenant_id,
            conversation_id=conversation_id,
            message_id=message_id,
            channel_id=channel.channel_id,
            direction=Direction.OUTBOUND.value,
            provider=channel.provider.value,
            type=type,
            text=text,
            media=[m.to_item() for m in media],
            content=content,
            status=status,
            status_rank=st.RANK.get(status),
            sender=sender,
            created_at=now,
            status_updated_at=now,
        )
        item.save(condition=MessageModel.pk.does_not_exist())
        return item

    def attach_provider_id(
        self,
        tenant_id: str,
        provider: str,
        provider_message_id: str,
        message_pk: str,
        message_sk: str,
        *,
        status: str = st.SENT,
        at: str | None = None,
    ) -> str:
        """Record that our outbound message is ``provider_message_id`` at the provider, now ``status`` (``sent``:
        the provider accepted it), merging a status report that was parked because its callback came first.

        ONE TransactWriteItems: the provider-id claim gets the message pointer (its parked status removed) and
        the message gets the provider id and the furthest of ``status`` and the parked status (forward-only
        rule). A status report racing with this either parks first (the claim's condition fails and this reads
        again) or finds the pointer and updates the message itself. Idempotent for the same message.
        Returns the message's status after the merge.
        """
        key = ProviderMessageModel.key(tenant_id, provider, provider_message_id)
        at = at or ids.iso(ids.utcnow())
        for attempt in range(_CONFLICT_RETRIES):
            try:
                claim: ProviderMessageModel | None = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                claim = None
            if claim is not None and claim.message_pk:
                if (claim.message_pk, claim.message_sk) != (message_pk, message_sk):
                    raise ValueError(f"provider message id {provider_message_id} belongs to another message")
                current = MessageModel.get(message_pk, message_sk, consistent_read=True)
                return str(current.status)  # attached before (a retry of ours): nothing to do

            final, final_at, error, details = status, at, None, None
            parked = claim.pending_status if claim is not None else None
            if claim is not None and parked and st.may_replace(status, parked):
                final, final_at = parked, claim.pending_at or at
                error, details = claim.pending_error, claim.pending_details

            claim_actions: list[Action] = [
                ProviderMessageModel.tenant_id.set(tenant_id),
                ProviderMessageModel.message_pk.set(message_pk),
                ProviderMessageModel.message_sk.set(message_sk),
                ProviderMessageModel.pending_status.remove(),
                ProviderMessageModel.pending_rank.remove(),
                ProviderMessageModel.pending_error.remove(),
                ProviderMessageModel.pending_at.remove(),
                ProviderMessageModel.pending_details.remove(),
                ProviderMessageModel.expires_at.remove(),  # a claim that points at a message never expires
            ]
            if claim is None:
                claim_condition = ProviderMessageModel.pk.does_not_exist()
            elif claim.pending_rank is None:
                claim_condition = ProviderMessageModel.message_pk.does_not_exist() & (
                    ProviderMessageModel.pending_rank.does_not_exist()
                )
            else:
                claim_condition = ProviderMessageModel.message_pk.does_not_exist() & (
                    ProviderMessageModel.pending_rank == claim.pending_rank
                )
            message_actions: list[Action] = [
                MessageModel.provider_message_id.set(provider_message_id),
                MessageModel.status.set(final),
                MessageModel.status_rank.set(st.RANK[final]),
                MessageModel.status_updated_at.set(final_at),
            ]
            if error is not None:
                message_actions.append(MessageModel.error.set(error))
            if details:
                message_actions.append(MessageModel.status_details.set(details))
            try:
                with TransactWrite(connection=transaction_connection()) as tx:
                    tx.update(ProviderMessageModel(*key), actions=claim_actions, condition=claim_condition)
                    tx.update(
                        MessageModel(message_pk, message_sk),
                        actions=message_actions,
                        condition=MessageModel.pk.exists(),
                    )
                return final
            except TransactWriteError as error_:
                codes = [r.code if r is not None else None for r in error_.cancellation_reasons]
                if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    raise ValueError(f"no message {message_sk} to attach {provider_message_id} to") from error_
                retry = codes and codes[0] in {"ConditionalCheckFailed", "TransactionConflict"}
                if not retry or attempt == _CONFLICT_RETRIES - 1:
                    raise
                # A status report parked (or changed the parked status) meanwhile: read the claim again.
                _jitter(attempt, 0.002, 0.01)
        raise AssertionError("unreachable")

    def fail_outbound(
        self, message_pk: str, message_sk: str, error: dict[str, Any], *, at: str | None = None
    ) -> bool:
        """Mark our outbound message ``failed`` with the normalized error (the provider refused it, or never
        answered). Forward-only like any status: False when a status report already moved it to delivered/read."""
        at = at or ids.iso(ids.utcnow())
        try:
            MessageModel(message_pk, message_sk).update(
                actions=[
                    MessageModel.status.set(st.FAILED),
                    MessageModel.status_rank.set(st.RANK[st.FAILED]),
                    MessageModel.status_updated_at.set(at),
                    MessageModel.error.set(error),
                ],
                condition=MessageModel.pk.exists() & self._forward_only(MessageModel.status_rank, st.FAILED),
            )
        except UpdateError as error_:
            if error_.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------------ inbound media
    def media_stored(
        self, message_pk: str, message_sk: str, index: int, *, s3_key: str, size: int, sha256: str, content_type: str
    ) -> bool:
        """``media[index]`` → ``stored``. Conditional: never over an entry already stored (a concurrent or repeated
        delivery of the same record wrote the same object); False then."""
        entry = MessageModel.media[index]
        return self._update_media(
            message_pk,
            message_sk,
            [
                entry["status"].set("stored"),
                entry["s3_key"].set(s3_key),
                entry["size"].set(size),
                entry["sha256"].set(sha256),
                entry["content_type"].set(content_type),
                entry["reason"].remove(),
            ],
            entry["status"] != "stored",
        )

    def media_failed(self, message_pk: str, message_sk: str, index: int, reason: str) -> bool:
        """``media[index]`` → ``failed`` with a reason, only while it is ``pending`` (a retry never regresses
        ``stored``); False when it was not pending any more."""
        entry = MessageModel.media[index]
        return self._update_media(
            message_pk,
            message_sk,
            [entry["status"].set("failed"), entry["reason"].set(reason[:500])],
            entry["status"] == "pending",
        )

    @staticmethod
    def _update_media(message_pk: str, message_sk: str, actions: Sequence[Any], condition: Any) -> bool:
        try:
            MessageModel(message_pk, message_sk).update(
                actions=list(actions), condition=MessageModel.pk.exists() & condition
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, message_pk: str, message_sk: str) -> MessageModel | None:
        try:
            return MessageModel.get(message_pk, message_sk, consistent_read=True)
        except DoesNotExist:
            return None

    def find_in_conversation(
        self, tenant_id: str, conversation_id: str, provider: str, message_id: str, *, max_scan: int = 1000
    ) -> MessageModel | None:
        """A message of this conversation by its provider id (one claim read) or by our id (a bounded scan of
        the conversation, newest first). None when it is not in this tenant's conversation."""
        partition = MessageModel.partition(tenant_id, conversation_id)
        try:
            claim = ProviderMessageModel.get(
                *ProviderMessageModel.key(tenant_id, provider, message_id), consistent_read=True
            )
        except DoesNotExist:
            claim = None
        if claim is not None and claim.message_pk == partition and claim.message_sk:
            return self.get(claim.message_pk, claim.message_sk)
        recent = MessageModel.query(
            partition,
            MessageModel.sk.startswith("MSG#"),
            scan_index_forward=False,
            limit=max_scan,
            page_size=200,
            attributes_to_get=["pk", "sk", "message_id"],
        )
        for item in recent:
            if item.message_id == message_id:
                return self.get(item.pk, item.sk)
        return None

    # ------------------------------------------------------------------ statuses
    def apply_status(self, channel: Channel, update: st.StatusUpdate, *, route_key: str) -> str:
        """Apply a provider status report to our outbound message, forward-only. Returns ``applied``, ``stale``
        or ``parked``; ChannelNotFound when ``route_key`` is no longer claimed by ``channel`` (disabled since the
        webhook cached it: nothing changed).

        One GetItem of the provider-id claim (where the message is), then ONE TransactWriteItems: the route
        check and the conditional update. ``stale``: the message already has this or a later status
        (duplicates and out-of-order reports land here and change nothing), or the provider id is an inbound
        message's, whose ``received`` no status may change. ``parked``: the message is not known yet (the
        callback beat the send response); the report is kept on the provider-id claim, with a TTL, and merged
        when the send records its id.
        """
        key = ProviderMessageModel.key(channel.tenant_id, update.provider, update.provider_message_id)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                claim = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                claim = None
            try:
                if claim is not None and claim.message_pk and claim.message_sk:
                    return self._update_message_status(claim.message_pk, claim.message_sk, update, channel, route_key)
                if self._park(key, update, channel, route_key):
                    return "parked"
                # The send recorded the message id between our read and the park: go round and apply it.
            except TransactWriteError as error:
                if "TransactionConflict" not in _codes(error, guarded=True) or attempt == _CONFLICT_RETRIES - 1:
                    raise
                _jitter(attempt, 0.002, 0.01)  # another status or the send's attach holds the item: read again
        return "stale"

    @staticmethod
    def _forward_only(attr_rank: Any, new_status: str) -> Any:
        limit = st.RANK[st.DELIVERED] if new_status == st.FAILED else st.RANK[new_status]
        return attr_rank.does_not_exist() | (attr_rank < limit)

    def _update_message_status(
        self, message_pk: str, message_sk: str, update: st.StatusUpdate, channel: Channel, route_key: str
    ) -> str:
        actions: list[Action] = [
            MessageModel.status.set(update.status),
            MessageModel.status_rank.set(st.RANK[update.status]),
            MessageModel.status_updated_at.set(update.at),
        ]
        if update.error is not None:
            actions.append(MessageModel.error.set(update.error))
        if update.details:
            actions.append(MessageModel.status_details.set(update.details))
        condition = (
            MessageModel.pk.exists()
            & (MessageModel.direction == Direction.OUTBOUND.value)
            & self._forward_only(MessageModel.status_rank, update.status)
        )
        try:
            with _transaction(channel, route_key) as tx:
                tx.update(MessageModel(message_pk, message_sk), actions=actions, condition=condition)
        except TransactWriteError as error:
            if _codes(error, guarded=True)[:1] == ["ConditionalCheckFailed"]:
                return "stale"
            raise
        return "applied"

    def _park(self, key: tuple[str, str], update: st.StatusUpdate, channel: Channel, route_key: str) -> bool:
        expires_at = int((ids.utcnow() + PARKED_STATUS_TTL).timestamp())
        actions: list[Action] = [
            ProviderMessageModel.tenant_id.set(channel.tenant_id),
            ProviderMessageModel.pending_status.set(update.status),
            ProviderMessageModel.pending_rank.set(st.RANK[update.status]),
            ProviderMessageModel.pending_at.set(update.at),
            ProviderMessageModel.expires_at.set(expires_at),
        ]
        if update.error is not None:
            actions.append(ProviderMessageModel.pending_error.set(update.error))
        if update.details:
            actions.append(ProviderMessageModel.pending_details.set(update.details))
        condition = ProviderMessageModel.message_pk.does_not_exist() & self._forward_only(
            ProviderMessageModel.pending_rank, update.status
        )
        try:
            with _transaction(channel, route_key) as tx:
                tx.update(ProviderMessageModel(*key), actions=actions, condition=condition)
        except TransactWriteError as error:
            if _codes(error, guarded=True)[:1] != ["ConditionalCheckFailed"]:
                raise
            try:
                current = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                return False
            return not current.message_pk  # parked already holds this or a later status
        return True
