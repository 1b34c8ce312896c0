"""Contacts: records with their own ids, found by phone number or by BSUID (docs/decisions.md, "Contacts with their
own ids").

- A contact item ``CONTACT#<contact_id>`` and one claim item per identity (``IDENTITY#phone#<E.164>``,
  ``IDENTITY#wa#<BSUID>``) pointing at it. Claims are written with ``attribute_not_exists(pk) OR contact_id =
  :id``, so a phone or a BSUID belongs to one contact of the tenant, under any concurrency.
- Ids are derived from the contact's anchor (the identity it was first seen with, phone first), so a webhook
  writes message, conversation, contact and claims in ONE transaction without reading: the derived (or cached)
  link is *checked* by the claims' conditions in that same transaction. Only when a condition fails (an identity
  belongs to a contact anchored elsewhere, e.g. a BSUID-only contact whose phone arrives later, or after an
  erasure) are the claims read (``resolve``), and the answer is cached for the warm function.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from gateway.domain import ids
from gateway.domain.channel import Channel
from gateway.domain.contact import (
    Contact,
    ContactLink,
    ContactRef,
    Identity,
    IdentityKind,
    derive_link,
    first_link,
    identities,
)
from gateway.domain.errors import NotFound
from gateway.domain.outbound import Recipient
from gateway.observability import logger, metrics
from gateway.store.models import ContactModel, ConversationModel, IdentityModel, transaction_connection
from gateway.store.transactions import transaction

CACHE_ENTRIES = 20_000


class ContactNotFound(NotFound):
    code = "contact_not_found"


@dataclass(frozen=True, slots=True)
class ContactFootprint:
    """Every item that holds a contact's data, for export and erasure: its item, its identity claims and its
    conversations (one-to-one per channel; groups it wrote in are listed apart: they hold others' messages too)."""

    contact: Contact
    contact_key: tuple[str, str]
    identity_keys: list[tuple[str, str]]
    conversation_ids: list[str]
    group_conversation_ids: list[str]


def contact_from_item(item: ContactModel) -> Contact:
    contact_id = item.contact_id or first_link(item.tenant_id, ContactRef(phone=item.phone)).contact_id
    return Contact(
        tenant_id=item.tenant_id,
        contact_id=contact_id,
        phone=item.phone,
        wa_user_id=item.wa_user_id,
        parent_user_id=item.parent_user_id,
        username=item.username,
        name=item.name,
        registered=bool(item.registered),
        opted_out=bool(item.opted_out),
        opted_out_at=item.opted_out_at,
        marketing_opted_out=bool(item.marketing_opted_out),
        attributes=dict(item.attributes or {}),
        tags=list(item.tags or []),
        created_at=item.created_at,
        last_inbound_at=item.last_inbound_at,
    )


class _LinkCache:
    """(tenant, identity) → ContactLink, bounded, least recently used evicted. A stale entry (after an erasure)
    only costs a failed condition and a read: the transaction checks every link it uses."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, Identity], ContactLink] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant_id: str, identity: Identity) -> ContactLink | None:
        with self._lock:
            link = self._entries.get((tenant_id, identity))
            if link is not None:
                self._entries.move_to_end((tenant_id, identity))
            return link

    def put(self, tenant_id: str, identity: Identity, link: ContactLink) -> None:
        with self._lock:
            self._entries[(tenant_id, identity)] = link
            self._entries.move_to_end((tenant_id, identity))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, tenant_id: str, identity: Identity) -> None:
        with self._lock:
            self._entries.pop((tenant_id, identity), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _LinkCache(CACHE_ENTRIES)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The contact a message belongs to, and which of its identities may be claimed for it (an identity already
    claimed by another contact is left alone: two records of one person are never merged silently)."""

    link: ContactLink
    claim: list[Identity]


def _claimable(claim: IdentityModel | None, link: ContactLink) -> bool:
    """Whether an identity may be claimed for ``link``'s contact (the claim write's condition, checked ahead)."""
    if claim is None or claim.contact_id == link.contact_id:
        return True
    return claim.contact_id is None and int(claim.generation or 0) == link.generation


class ContactRepository:
    cache = _CACHE

    # ------------------------------------------------------------------ the webhook's path
    def guess(self, tenant_id: str, ref: ContactRef) -> Resolution:
        """The link to try first, without reading: a cached one, else the one a new contact would get."""
        named = identities(ref)
        for identity in named:
            if (link := self.cache.get(tenant_id, identity)) is not None:
                return Resolution(link, named)
        return Resolution(first_link(tenant_id, ref), named)

    def resolve(
        self, tenant_id: str, ref: ContactRef, known: dict[Identity, IdentityModel | None] | None = None
    ) -> Resolution:
        """Say which contact the message belongs to from the identity claims: the phone's contact, else the
        BSUID's, else a new one (a new generation after an erasure). ``known``: claims already read (a failed
        transaction returns the item whose condition failed); the others are read, consistently."""
        named = identities(ref)
        known = known or {}
        claims = {i: known[i] if i in known else self._claim(tenant_id, i) for i in named}
        owners = [(i, c) for i, c in claims.items() if c is not None and c.contact_id]
        if owners:
            identity, claim = owners[0]  # phone first: the longer-lived, and what older data is keyed by
            anchor = Identity(IdentityKind(claim.anchor_kind), str(claim.anchor))
            link = ContactLink(str(claim.contact_id), anchor, int(claim.generation or 0))
            others = {c.contact_id for _, c in owners if c.contact_id != link.contact_id}
            if others:
                logger.warning(
                    "one person, two contacts: the message is stored with the phone's contact",
                    extra={"tenant_id": tenant_id, "contact_id": link.contact_id, "other_contact_ids": sorted(others)},
                )
                metrics.add_metric(name="ContactIdentityConflict", unit="Count", value=1)
            claim_now = [i for i in named if _claimable(claims[i], link)]
        else:
            anchor = named[0]
            tombstone = claims[anchor]
            generation = int(tombstone.generation or 0) if tombstone is not None else 0
            link = derive_link(tenant_id, anchor, generation)
            claim_now = named
        for identity in named:
            self.cache.put(tenant_id, identity, link)
        return Resolution(link, claim_now)

    def remember(self, tenant_id: str, ref: ContactRef, link: ContactLink) -> None:
        for identity in identities(ref):
            self.cache.put(tenant_id, identity, link)

    @staticmethod
    def _claim(tenant_id: str, identity: Identity) -> IdentityModel | None:
        try:
            key = IdentityModel.key(tenant_id, identity.kind.value, identity.value)
            return IdentityModel.get(*key, consistent_read=True)
        except DoesNotExist:
            return None

    @staticmethod
    def claim_writes(
        tenant_id: str, resolution: Resolution
    ) -> list[tuple[IdentityModel, list[Action], Any]]:
        """The identity claims of a transaction: each claimed for the link's contact, or checked to be its already."""
        link = resolution.link
        writes = []
        for identity in resolution.claim:
            claim = IdentityModel(*IdentityModel.key(tenant_id, identity.kind.value, identity.value))
            actions: list[Action] = [
                IdentityModel.tenant_id.set(tenant_id),
                IdentityModel.contact_id.set(link.contact_id),
                IdentityModel.anchor_kind.set(link.anchor.kind.value),
                IdentityModel.anchor.set(link.anchor.value),
            ]
            # free, or ours already, or a tombstone of the generation this link was derived for (after an erasure
            # the identity's next contact has a new id: a guess of the old one fails here and is resolved)
            tombstone = IdentityModel.contact_id.does_not_exist() & (
                IdentityModel.generation == link.generation
                if link.generation
                else IdentityModel.generation.does_not_exist()
            )
            condition = (
                IdentityModel.pk.does_not_exist() | (IdentityModel.contact_id == link.contact_id) | tombstone
            )
            writes.append((claim, actions, condition))
        return writes

    @staticmethod
    def contact_write(
        tenant_id: str,
        link: ContactLink,
        ref: ContactRef,
        *,
        now: str,
        last_inbound_at: str | None = None,
        conversation_id: str | None = None,
        group: bool = False,
        created_at: str | None = None,
    ) -> tuple[ContactModel, list[Action]]:
        """The contact's upsert in a message's transaction: identities and profile as last seen, the conversation
        it wrote in, and (for what the contact wrote) when it last wrote. ``created_at`` (default ``now``) is
        kept when the record exists."""
        item = ContactModel(*ContactModel.key(tenant_id, link.contact_id))
        actions: list[Action | None] = [
            ContactModel.tenant_id.set(tenant_id),
            ContactModel.contact_id.set(link.contact_id),
            ContactModel.anchor_kind.set(link.anchor.kind.value),
            ContactModel.anchor.set(link.anchor.value),
            ContactModel.created_at.set(ContactModel.created_at | (created_at or now)),
            ContactModel.updated_at.set(now),
            ContactModel.phone.set(ref.phone) if ref.phone else None,
            ContactModel.wa_user_id.set(ref.wa_user_id) if ref.wa_user_id else None,
            ContactModel.parent_user_id.set(ref.parent_user_id) if ref.parent_user_id else None,
            ContactModel.username.set(ref.username) if ref.username else None,
            ContactModel.name.set(ref.name) if ref.name else None,
            ContactModel.last_inbound_at.set(last_inbound_at) if last_inbound_at else None,
        ]
        if conversation_id is not None:
            listed = ContactModel.group_conversation_ids if group else ContactModel.conversation_ids
            actions.append(listed.add({conversation_id}))
        return item, [a for a in actions if a is not None]

    # ------------------------------------------------------------------ reads
    def get(self, tenant_id: str, contact_id: str) -> Contact:
        return contact_from_item(self._item(tenant_id, contact_id))

    def find(self, tenant_id: str, identity: Identity) -> Contact | None:
        """The contact holding a phone number or a BSUID, or None."""
        claim = self._claim(tenant_id, identity)
        if claim is None or not claim.contact_id:
            return None
        try:
            return self.get(tenant_id, str(claim.contact_id))
        except ContactNotFound:
            return None

    def find_by_phone(self, tenant_id: str, phone: str) -> Contact | None:
        return self.find(tenant_id, Identity(IdentityKind.PHONE, phone))

    def find_by_wa_user_id(self, tenant_id: str, wa_user_id: str) -> Contact | None:
        return self.find(tenant_id, Identity(IdentityKind.WA_USER, wa_user_id))

    def footprint(self, tenant_id: str, contact_id: str) -> ContactFootprint:
        """Everything held about a contact, by key (erasure and export, docs/decisions.md)."""
        item = self._item(tenant_id, contact_id)
        contact = contact_from_item(item)
        named = identities(ContactRef(phone=contact.phone, wa_user_id=contact.wa_user_id))
        return ContactFootprint(
            contact=contact,
            contact_key=ContactModel.key(tenant_id, contact_id),
            identity_keys=[IdentityModel.key(tenant_id, i.kind.value, i.value) for i in named],
            conversation_ids=sorted(item.conversation_ids or ()),
            group_conversation_ids=sorted(item.group_conversation_ids or ()),
        )

    @staticmethod
    def _item(tenant_id: str, contact_id: str) -> ContactModel:
        try:
            return ContactModel.get(*ContactModel.key(tenant_id, contact_id), consistent_read=True)
        except DoesNotExist as error:
            raise ContactNotFound(f"No contact {contact_id}.") from error

    # ------------------------------------------------------------------ migration (docs/decisions.md)
    def adopt_legacy(self, item: ContactModel) -> ContactLink:
        """Move a contact stored before contacts had ids (``CONTACT#<E.164>``) to its own record: the record and
        its phone claim are written (merged with whatever a webhook wrote meanwhile: the earliest ``created_at``
        and the latest ``last_inbound_at`` win, a name already there stays), then the old item is deleted if it
        did not change meanwhile. Idempotent: running it twice, or after a crash at any step, ends the same."""
        tenant, phone = item.tenant_id, str(item.phone)
        resolution = self.resolve(tenant, ContactRef(phone=phone))
        link = resolution.link
        record, actions = self.contact_write(
            tenant, link, ContactRef(phone=phone), now=ids.now_iso(), created_at=item.created_at
        )
        if item.name:  # a name a webhook wrote meanwhile is newer
            actions.append(ContactModel.name.set(ContactModel.name | item.name))
        with TransactWrite(connection=transaction_connection()) as tx:
            tx.update(record, actions=actions)
            for claim, claim_actions, condition in self.claim_writes(tenant, resolution):
                tx.update(claim, actions=claim_actions, condition=condition)
        self._keep_earliest(tenant, link.contact_id, "created_at", item.created_at, earliest=True)
        if item.last_inbound_at:
            self._keep_earliest(tenant, link.contact_id, "last_inbound_at", item.last_inbound_at, earliest=False)
        legacy = ContactModel(*ContactModel.legacy_key(tenant, phone))
        try:
            legacy.delete(condition=ContactModel.created_at == item.created_at)
        except DeleteError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
        return link

    @staticmethod
    def _keep_earliest(tenant_id: str, contact_id: str, name: str, value: str, *, earliest: bool) -> None:
        attribute = getattr(ContactModel, name)
        better = (attribute > value) if earliest else (attribute < value)
        try:
            ContactModel(*ContactModel.key(tenant_id, contact_id)).update(
                actions=[attribute.set(value)], condition=attribute.does_not_exist() | better
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    def adopt_conversation(self, item: ConversationModel) -> str | None:
        """A one-to-one conversation stored before contacts had ids: its ``contact_id`` and ``kind`` set (the id
        is the one derived from its phone, which its id was always derived from), and it is listed on the
        contact's record. None for conversations that need nothing."""
        if item.contact_id or item.kind == "group" or not item.contact_phone:
            return None
        tenant = item.tenant_id
        link = self.resolve(tenant, ContactRef(phone=item.contact_phone)).link
        with TransactWrite(connection=transaction_connection()) as tx:
            tx.update(
                ConversationModel(*ConversationModel.key(tenant, item.conversation_id)),
                actions=[ConversationModel.contact_id.set(link.contact_id), ConversationModel.kind.set("direct")],
                condition=ConversationModel.pk.exists(),
            )
            record, actions = self.contact_write(
                tenant,
                link,
                ContactRef(phone=item.contact_phone),
                now=ids.now_iso(),
                conversation_id=item.conversation_id,
                created_at=item.created_at,
            )
            tx.update(record, actions=actions)
        return link.contact_id

    # ------------------------------------------------------------------ consent
    def set_marketing_preference(
        self, channel: Channel, ref: ContactRef, *, opted_out: bool, at: str, route_key: str
    ) -> Contact | None:
        """Meta's ``user_preferences``: the contact stopped (or resumed) marketing messages. None when nobody holds
        any of the identities named (nothing to record: a contact who never wrote has no record). A webhook
        write: the number's route claim is re-checked in the same transaction (ChannelNotFound, nothing written)."""
        tenant_id = channel.tenant_id
        for identity in identities(ref):
            claim = self._claim(tenant_id, identity)
            if claim is None or not claim.contact_id:
                continue
            with transaction(channel, route_key) as tx:
                tx.update(
                    ContactModel(*ContactModel.key(tenant_id, str(claim.contact_id))),
                    actions=[
                        ContactModel.marketing_opted_out.set(opted_out),
                        ContactModel.marketing_opted_out_at.set(at),
                        ContactModel.updated_at.set(at),
                    ],
                    condition=ContactModel.pk.exists(),
                )
            return self.get(tenant_id, str(claim.contact_id))
        return None


def recipient_of(item: ConversationModel) -> Recipient:
    """Where a reply to a conversation goes: the group for a group conversation (never a member privately), else
    the contact by phone, else by BSUID."""
    if item.kind == "group" and item.group_id:
        return Recipient(group_id=item.group_id)
    return Recipient(phone=item.contact_phone, wa_user_id=item.contact_wa_user_id)


def conversation_contact(item: ConversationModel) -> dict[str, Any]:
    """A conversation's ``contact`` object (DESIGN contract): id, phone, wa_user_id, username, name. Conversations
    stored before contacts had ids carry only the phone: their contact id is the one derived from it."""
    contact_id = item.contact_id
    if contact_id is None and item.contact_phone and item.kind != "group":
        contact_id = first_link(item.tenant_id, ContactRef(phone=item.contact_phone)).contact_id
    return {
        "id": contact_id,
        "phone": item.contact_phone,
        "wa_user_id": item.contact_wa_user_id,
        "username": item.contact_username,
        "name": item.contact_name,
    }

