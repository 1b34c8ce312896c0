"""Messages: inbound ingestion in ONE transaction, listing newest first."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from gateway.domain import ids
from gateway.domain import status as st
from gateway.domain.channel import Channel
from gateway.domain.contact import Identity, IdentityKind
from gateway.domain.message import (
    Amendment,
    AmendmentKind,
    Direction,
    InboundMessage,
    MediaRef,
    Origin,
    effective_created_at,
)
from gateway.store.contacts_repo import ContactRepository, Resolution
from gateway.store.conversations_repo import Page
from gateway.store.models import (
    ConversationModel,
    IdentityModel,
    MessageModel,
    ProviderMessageModel,
    tenant_pk,
)
from gateway.store.pagination import decode_cursor, encode_cursor
from gateway.store.transactions import cancellation_codes, transaction

_CONFLICT_RETRIES = 5
# How long something parked on a provider-id claim waits for its message: a status that beat the send's answer
# (which usually arrives a second later and removes the TTL), or an edit or deletion that beat the message it
# amends (docs/decisions.md D26). Statuses of messages other apps sent on the same WhatsApp Business Account, and
# amendments of messages never delivered to us, are never claimed, and DynamoDB's TTL deletes them. 7 days: as
# long as Meta retries a notification (docs/decisions.md D1).
PARKED_TTL = timedelta(days=7)


def _parked_until() -> int:
    """The ``expires_at`` of a claim that holds only something parked (one rule for statuses and amendments)."""
    return int((ids.utcnow() + PARKED_TTL).timestamp())


def _jitter(attempt: int, low: float, high: float) -> None:
    time.sleep(random.uniform(low, high) * (attempt + 1))  # noqa: S311 - jitter, not crypto


def _retry_conflict(error: TransactWriteError, attempt: int) -> None:
    """After a guarded write of a claim or a message failed: wait a little when another writer held an item
    (TransactionConflict) and attempts remain, else raise ``error``."""
    if "TransactionConflict" not in cancellation_codes(error, guarded=True) or attempt == _CONFLICT_RETRIES - 1:
        raise error
    _jitter(attempt, 0.002, 0.01)


class TransactionConflictPersisted(RuntimeError):
    """Concurrent writers kept cancelling the transaction: a 5xx, the provider retries (idempotent)."""


def amended(
    text: str | None, media: list[dict[str, Any]], amendment: dict[str, Any]
) -> tuple[str | None, list[dict[str, Any]], dict[str, Any]]:
    """A message's text, media and changed attributes once an edit or a deletion is applied (one home for the
    rule, used when the message is stored after its amendment and when the amendment finds it stored): an edit
    replaces the text (and a media's caption) and sets ``edited_at``; a deletion empties text and media and sets
    ``deleted_at`` (the media objects are deleted from S3 by the inbound processor)."""
    if amendment.get("kind") == AmendmentKind.REVOKE.value:
        return None, [], {"deleted_at": amendment.get("at")}
    new_text = amendment.get("text")
    media = [dict(m) for m in media]
    if media:
        media[0]["caption"] = new_text
    return new_text, media, {"edited_at": amendment.get("at")}


def _supersedes(new: dict[str, Any], parked: dict[str, Any]) -> bool:
    """Whether a new amendment replaces a parked one: a deletion beats an edit; of two edits the later wins."""
    if parked.get("kind") == AmendmentKind.REVOKE.value:
        return False
    if new["kind"] == AmendmentKind.REVOKE.value:
        return True
    return str(new["at"]) >= str(parked.get("at") or "")


class _InboundWrite:
    """The items of one inbound (or echo) transaction, in order, with a label each to read cancellations by."""

    def __init__(
        self,
        channel: Channel,
        message: InboundMessage,
        resolution: Resolution,
        received_at: str,
        created_at: str,
        snapshot: dict[str, Any] | None,
        parked: ProviderMessageModel | None,
    ) -> None:
        self.channel, self.message, self.resolution = channel, message, resolution
        # Only identities this contact holds (or may claim) are written on it: a BSUID that belongs to another
        # contact (two records of one person, docs/decisions.md D24) stays off this one.
        claimed = {identity.kind for identity in resolution.claim}
        self.contact = replace(
            message.contact,
            phone=message.contact.phone if IdentityKind.PHONE in claimed else None,
            wa_user_id=message.contact.wa_user_id if IdentityKind.WA_USER in claimed else None,
        )
        self.received_at, self.created_at = received_at, created_at
        self.snapshot, self.parked = snapshot, parked
        tenant = self.tenant = channel.tenant_id
        self.echo = message.origin is Origin.BUSINESS_APP
        self.group = message.group_id is not None and not self.echo
        self.message_id = ids.stable_id("msg", tenant, message.provider, message.provider_message_id)
        link = resolution.link
        self.conversation_id = (
            ids.group_conversation_id(tenant, channel.channel_id, str(message.group_id))
            if self.group
            else link.conversation_id(tenant, channel.channel_id)
        )
        self.message_pk = MessageModel.partition(tenant, self.conversation_id)
        self.message_sk = MessageModel.sort(created_at, self.message_id)
        self.labels: list[str] = []

    # ------------------------------------------------------------------ the items
    def add_to(self, tx: TransactWrite, contacts: ContactRepository, *, guarded: bool) -> None:
        """The items after the route check that ``transaction`` puts first when ``guarded``."""
        self.labels = ["route"] if guarded else []
        self._claim(tx)
        tx.save(self._message())
        self.labels.append("message")
        actions, condition = self._conversation()
        conversation = ConversationModel(*ConversationModel.key(self.tenant, self.conversation_id))
        tx.update(conversation, actions=actions, condition=condition, return_values=ALL_OLD)
        self.labels.append("conversation")
        contact, contact_actions = contacts.contact_write(
            self.tenant,
            self.resolution.link,
            self.contact,
            now=self.received_at,
            last_inbound_at=self.created_at if not self.echo and self._newest() else None,
            conversation_id=self.conversation_id,
            group=self.group,
        )
        tx.update(contact, actions=contact_actions)
        self.labels.append("contact")
        for claim, claim_actions, claim_condition in contacts.claim_writes(self.tenant, self.resolution):
            tx.update(claim, actions=claim_actions, condition=claim_condition, return_values=ALL_OLD)
            self.labels.append("identity")

    def _claim(self, tx: TransactWrite) -> None:
        key = ProviderMessageModel.key(self.tenant, self.message.provider, self.message.provider_message_id)
        if self.parked is None:
            claim = ProviderMessageModel(
                *key, tenant_id=self.tenant, message_pk=self.message_pk, message_sk=self.message_sk
            )
            tx.save(claim, condition=ProviderMessageModel.pk.does_not_exist(), return_values=ALL_OLD)
        else:  # an edit or deletion parked here before the message arrived: taken over, applied below
            condition = ProviderMessageModel.message_pk.does_not_exist() & (
                ProviderMessageModel.pending_amendment == self.parked.pending_amendment
            )
            tx.update(
                ProviderMessageModel(*key),
                actions=[
                    ProviderMessageModel.tenant_id.set(self.tenant),
                    ProviderMessageModel.message_pk.set(self.message_pk),
                    ProviderMessageModel.message_sk.set(self.message_sk),
                    ProviderMessageModel.pending_amendment.remove(),
                    ProviderMessageModel.expires_at.remove(),
                ],
                condition=condition,
                return_values=ALL_OLD,
            )
        self.labels.append("claim")

    def _message(self) -> MessageModel:
        message = self.message
        text, media = message.text, [m.to_item() for m in message.media]
        changes: dict[str, Any] = {}
        if self.parked is not None and self.parked.pending_amendment:
            text, media, changes = amended(text, media, self.parked.pending_amendment)
        if self.echo:
            direction, status, sender = Direction.OUTBOUND, st.SENT, {"kind": Origin.BUSINESS_APP.value, "id": None}
        else:
            direction, status = Direction.INBOUND, "received"
            sender = {"kind": "contact", "id": self.resolution.link.contact_id}
            if self.group and message.contact.name:
                sender["name"] = message.contact.name
        return MessageModel(
            self.message_pk,
            self.message_sk,
            tenant_id=self.tenant,
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            channel_id=self.channel.channel_id,
            direction=direction.value,
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            type=message.type,
            text=text,
            media=media,
            location=message.location,
            context=message.context,
            content=message.content,
            status=status,
            status_rank=st.RANK[st.SENT] if self.echo else None,
            sender=sender,
            origin=Origin.BUSINESS_APP.value if self.echo else None,
            created_at=self.created_at,
            received_at=self.received_at,
            status_updated_at=self.received_at,
            **changes,
        )

    def _newest(self) -> bool:
        """Whether this message is (assumed, or known to be) the conversation's latest."""
        if not self.snapshot:
            return True
        last = self.snapshot.get("last_message_at")
        return last is None or self.created_at >= last

    def _conversation(self) -> tuple[list[Action], Any]:
        C = ConversationModel
        channel, contact, created = self.channel, self.contact, self.created_at
        actions: list[Action | None] = [
            C.tenant_id.set(self.tenant),
            C.conversation_id.set(self.conversation_id),
            C.channel_id.set(channel.channel_id),
            C.provider.set(self.message.provider),
            C.kind.set("group" if self.group else "direct"),
            C.created_at.set(C.created_at | created),
            C.location_id.set(C.location_id | channel.location_id) if channel.location_id else None,
            C.gsi1pk.set(tenant_pk(self.tenant)),
        ]
        if self.group:
            actions.append(C.group_id.set(str(self.message.group_id)))
        else:
            actions += [
                C.contact_id.set(self.resolution.link.contact_id),
                C.contact_phone.set(contact.phone) if contact.phone else None,
                C.contact_wa_user_id.set(contact.wa_user_id) if contact.wa_user_id else None,
                C.contact_username.set(contact.username) if contact.username else None,
                C.contact_name.set(contact.name) if contact.name else None,
            ]
        if not self.echo:
            actions.append(C.unread_count.add(1))
        if self._newest():
            actions += [
                C.last_message_at.set(created),
                C.last_message_preview.set(self.message.preview()),
                C.gsi1sk.set(C.activity_key(created, self.conversation_id)),
            ]
            if self.echo:  # a person answers from the app: auto-replies pause like after an operator send
                lock = ids.iso(ids.parse_iso(created) + timedelta(minutes=channel.operator_lock_minutes))
                actions.append(C.operator_lock_until.set(lock))
            else:
                actions.append(C.last_inbound_at.set(created))
        elif not self.echo:
            last_inbound = (self.snapshot or {}).get("last_inbound_at")
            if last_inbound is None or created > last_inbound:
                actions.append(C.last_inbound_at.set(created))
        if not self.snapshot:
            condition = C.last_message_at.does_not_exist() | (C.last_message_at <= created)
        else:
            last = self.snapshot.get("last_message_at")
            condition = C.last_message_at.does_not_exist() if last is None else C.last_message_at == last
        return [a for a in actions if a is not None], condition

    # ------------------------------------------------------------------ reading a cancellation
    def failures(self, error: TransactWriteError) -> dict[str, Any]:
        """label → what the failed item holds now (``claim``: the ProviderMessageModel or None; ``conversation``:
        its attributes; ``identity``: {Identity: IdentityModel}); only items whose condition failed."""
        found: dict[str, Any] = {}
        identities: dict[Identity, IdentityModel | None] = {}
        reasons = list(error.cancellation_reasons or [])
        for label, reason in zip(self.labels, reasons, strict=False):
            if reason is None or reason.code != "ConditionalCheckFailed":
                continue
            raw = reason.raw_item
            if label == "claim":
                found["claim"] = ProviderMessageModel.from_raw_data(raw) if raw else None
            elif label == "conversation":
                found["conversation"] = dict(ConversationModel.from_raw_data(raw).attribute_values) if raw else {}
            elif label == "identity" and raw:
                claim = IdentityModel.from_raw_data(raw)
                kind, value = str(claim.sk).split("#", 2)[1:]
                identities[Identity(IdentityKind(kind), value)] = claim
            else:
                found[label] = None
        if identities:
            found["identity"] = identities
        return found

    @staticmethod
    def conflict(error: TransactWriteError) -> bool:
        return any(r is not None and r.code == "TransactionConflict" for r in error.cancellation_reasons or [])


class MessageRepository:
    def __init__(self, contacts: ContactRepository | None = None) -> None:
        self.contacts = contacts or ContactRepository()

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
        """Store a message the provider reported, with its conversation, contact and identity claims, in ONE
        TransactWriteItems when the contact is known (docs/decisions.md, "Contacts with their own ids").

        What the contact wrote is stored ``received`` (inbound); an echo (``origin=business_app``: the business
        wrote from the WhatsApp Business app) is stored ``sent`` (outbound, ``sender.kind=business_app``), sets the
        operator lock and changes neither the unread count nor the 24-hour window. A message with a ``group_id``
        belongs to the group's conversation, never to the sender's one-to-one.

        ``created_at`` is the provider's time when sane (``effective_created_at``), ``received_at`` the arrival
        (``now``). A late delivery (older than the conversation's last activity) neither moves the inbox order
        back nor the 24-hour window: it is filed at its own time.

        Returns the new message id, or None when the provider message id was already stored (a redelivery), in
        which case nothing at all changed. ``route_key``: also check, in the same transaction, that this provider
        address is still claimed by the channel (ChannelNotFound, nothing stored, when it was disabled).
        """
        received_at = now or ids.iso(ids.utcnow())
        created_at = effective_created_at(message.provider_timestamp, received_at)
        tenant = channel.tenant_id
        resolution = self.contacts.guess(tenant, message.contact)
        snapshot: dict[str, Any] | None = None  # None: assume the newest message; else the conversation as read
        parked: ProviderMessageModel | None = None
        for attempt in range(_CONFLICT_RETRIES + 2):
            write = _InboundWrite(channel, message, resolution, received_at, created_at, snapshot, parked)
            try:
                with transaction(channel, route_key) as tx:
                    write.add_to(tx, self.contacts, guarded=route_key is not None)
                self.contacts.remember(tenant, message.contact, resolution.link)
                return write.message_id
            except TransactWriteError as error:
                failed = write.failures(error)
                if "claim" in failed:
                    existing = failed["claim"]
                    if existing is None or existing.message_pk or not existing.pending_amendment:
                        return None  # the claim exists: a redelivery of a stored message
                    parked = existing  # an edit or deletion came first: store the message with it applied
                    continue
                if "identity" in failed:
                    resolution = self.contacts.resolve(tenant, message.contact, failed["identity"])
                    continue
                if "conversation" in failed:
                    snapshot = failed["conversation"]  # a later message is stored already: keep its activity
                    continue
                if not write.conflict(error) or attempt >= _CONFLICT_RETRIES:
                    raise
                # A concurrent delivery of the same message (or activity in the same conversation) holds the
                # items; the retry either wins or sees the claim and reports a duplicate.
                _jitter(attempt, 0.005, 0.02)
        raise TransactionConflictPersisted("the inbound message could not be stored after retries")

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
                with transaction() as tx:
                    tx.update(ProviderMessageModel(*key), actions=claim_actions, condition=claim_condition)
                    tx.update(
                        MessageModel(message_pk, message_sk),
                        actions=message_actions,
                        condition=MessageModel.pk.exists(),
                    )
                return final
            except TransactWriteError as error_:
                codes = cancellation_codes(error_)
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

    # ------------------------------------------------------------------ edits and deletions
    def apply_amendment(self, channel: Channel, amendment: Amendment, *, now: str, route_key: str) -> str:
        """Apply an edit or a deletion to the message it names (found by its provider id): ``applied``,
        ``stale`` (the message already shows a later edit, or was deleted), or ``parked`` when the message is not
        stored yet: the amendment waits on the provider-id claim, with the TTL of anything parked (PARKED_TTL),
        and ``record_inbound`` stores the message with it applied. A deletion beats any edit; of two edits the
        later one wins. Like statuses, one GetItem of the claim then ONE TransactWriteItems that re-checks the
        number's route claim: ChannelNotFound when ``route_key`` is no longer ``channel``'s (nothing changed)."""
        change = {
            "kind": amendment.kind.value,
            "text": amendment.text,
            "at": effective_created_at(amendment.provider_timestamp, now),
            "provider_message_id": amendment.provider_message_id,
        }
        key = ProviderMessageModel.key(channel.tenant_id, amendment.provider, amendment.original_provider_message_id)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                claim: ProviderMessageModel | None = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                claim = None
            try:
                if claim is not None and claim.message_pk and claim.message_sk:
                    return self._amend_stored(str(claim.message_pk), str(claim.message_sk), change, channel, route_key)
                parked = claim.pending_amendment if claim is not None else None
                if parked is not None and not _supersedes(change, parked):
                    return "stale"
                if self._park_amendment(key, change, parked, channel, route_key):
                    return "parked"
                # the message arrived, or another amendment parked, meanwhile: read again
            except TransactWriteError as error:
                _retry_conflict(error, attempt)  # another amendment or the message itself holds the item
        return "stale"

    @staticmethod
    def _park_amendment(
        key: tuple[str, str], change: dict[str, Any], parked: Any, channel: Channel, route_key: str
    ) -> bool:
        """Park ``change`` on the claim unless the message arrived or ``parked`` changed meanwhile (False)."""
        condition = ProviderMessageModel.message_pk.does_not_exist() & (
            ProviderMessageModel.pending_amendment.does_not_exist()
            if parked is None
            else ProviderMessageModel.pending_amendment == parked
        )
        actions: list[Action] = [
            ProviderMessageModel.tenant_id.set(channel.tenant_id),
            ProviderMessageModel.pending_amendment.set(change),
            ProviderMessageModel.expires_at.set(_parked_until()),
        ]
        try:
            with transaction(channel, route_key) as tx:
                tx.update(ProviderMessageModel(*key), actions=actions, condition=condition)
        except TransactWriteError as error:
            if cancellation_codes(error, guarded=True)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def _amend_stored(
        self, message_pk: str, message_sk: str, change: dict[str, Any], channel: Channel, route_key: str
    ) -> str:
        message = self.get(message_pk, message_sk)
        if message is None:
            return "stale"
        edit = change["kind"] == AmendmentKind.EDIT.value
        if message.deleted_at or (edit and (message.edited_at or "") > change["at"]):
            return "stale"
        media = [m.as_dict() if hasattr(m, "as_dict") else dict(m) for m in message.media or []]
        text, media, stamps = amended(message.text, media, change)
        actions: list[Action] = [MessageModel.text.set(text) if text is not None else MessageModel.text.remove()]
        actions.append(MessageModel.media.set(media))  # type: ignore[arg-type]  # stored as the maps they are
        actions += [getattr(MessageModel, name).set(value) for name, value in stamps.items()]
        if change["kind"] == AmendmentKind.REVOKE.value:
            actions += [MessageModel.content.remove(), MessageModel.location.remove()]
            # the media objects go from S3 in the inbound processor, which sees the old image's media
        condition = MessageModel.pk.exists() & MessageModel.deleted_at.does_not_exist()
        if message.edited_at:
            condition &= MessageModel.edited_at == message.edited_at
        else:
            condition &= MessageModel.edited_at.does_not_exist()
        try:
            with transaction(channel, route_key) as tx:
                tx.update(MessageModel(message_pk, message_sk), actions=actions, condition=condition)
        except TransactWriteError as error:
            if cancellation_codes(error, guarded=True)[:1] == ["ConditionalCheckFailed"]:
                return "stale"  # another amendment won meanwhile (a retry of this one would see it and stop)
            raise
        return "applied"

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
                _retry_conflict(error, attempt)  # another status or the send's attach holds the item: read again
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
            with transaction(channel, route_key) as tx:
                tx.update(MessageModel(message_pk, message_sk), actions=actions, condition=condition)
        except TransactWriteError as error:
            if cancellation_codes(error, guarded=True)[:1] == ["ConditionalCheckFailed"]:
                return "stale"
            raise
        return "applied"

    def _park(self, key: tuple[str, str], update: st.StatusUpdate, channel: Channel, route_key: str) -> bool:
        actions: list[Action] = [
            ProviderMessageModel.tenant_id.set(channel.tenant_id),
            ProviderMessageModel.pending_status.set(update.status),
            ProviderMessageModel.pending_rank.set(st.RANK[update.status]),
            ProviderMessageModel.pending_at.set(update.at),
            ProviderMessageModel.expires_at.set(_parked_until()),
        ]
        if update.error is not None:
            actions.append(ProviderMessageModel.pending_error.set(update.error))
        if update.details:
            actions.append(ProviderMessageModel.pending_details.set(update.details))
        condition = ProviderMessageModel.message_pk.does_not_exist() & self._forward_only(
            ProviderMessageModel.pending_rank, update.status
        )
        try:
            with transaction(channel, route_key) as tx:
                tx.update(ProviderMessageModel(*key), actions=actions, condition=condition)
        except TransactWriteError as error:
            if cancellation_codes(error, guarded=True)[:1] != ["ConditionalCheckFailed"]:
                raise
            try:
                current = ProviderMessageModel.get(*key, consistent_read=True)
            except DoesNotExist:
                return False
            return not current.message_pk  # parked already holds this or a later status
        return True
