"""PynamoDB models. Key design and access patterns: docs/decisions.md (D-keys).

Every tenant-owned item's partition key starts with ``TENANT#<tenant_id>``. The only items that do not are the
route claims in the channels table, which map a provider address (Twilio number, Meta phone_number_id, Meta
verify token) to the one tenant/channel that owns it: they exist to make that mapping unique across tenants.
Every key is built by ``gateway.domain.keys.compose``, so different parts can never make the same key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from gateway.config import Settings
from gateway.domain.keys import compose, segment

TENANT = "TENANT"


def tenant_pk(tenant_id: str) -> str:
    """``TENANT#<tenant_id>``, the start of every tenant-led key: the tenant id is a segment even here."""
    return compose(TENANT, segment(tenant_id))


class _Base(Model):
    """Common Meta; table names and region are bound from Settings at cold start (``bind_tables``)."""

    class Meta:
        abstract = True
        table_name = "unbound"
        region = "us-east-1"
        max_retry_attempts = 3
        connect_timeout_seconds = 2
        read_timeout_seconds = 5

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


# ------------------------------------------------------------------------------------------ channels table
class WabaIndex(GlobalSecondaryIndex["ChannelModel"]):
    """Meta channels by WhatsApp Business Account id (sparse: only Meta channels have one; keys only). Several
    channels (numbers) share a WABA: WABA-level notifications are verified and applied through it."""

    class Meta:
        index_name = "by_waba"
        projection = KeysOnlyProjection()

    business_account_id = UnicodeAttribute(hash_key=True)


class ChannelModel(_Base):
    """pk=TENANT#<tenant>  sk=CHANNEL#<channel_id>"""

    class Meta(_Base.Meta):
        abstract = False

    by_waba = WabaIndex()

    tenant_id = UnicodeAttribute()
    channel_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    name = UnicodeAttribute()
    phone_number = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    location_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # KMS ciphertext (base64) of the JSON credentials; encryption context {tenant_id, channel_id}.
    credentials_ciphertext = UnicodeAttribute()
    credential_hints = JSONAttribute(default=dict)
    # Twilio
    account_sid = UnicodeAttribute(null=True)
    messaging_service_sid = UnicodeAttribute(null=True)
    # Meta
    phone_number_id = UnicodeAttribute(null=True)
    business_account_id = UnicodeAttribute(null=True)
    verify_token = UnicodeAttribute(null=True)
    webhook_verified_at = UnicodeAttribute(null=True)
    auto_reply = JSONAttribute(null=True)
    health = JSONAttribute(null=True)  # Meta's last phone_number_quality_update for the number
    version = NumberAttribute(default=1)

    @staticmethod
    def key(tenant_id: str, channel_id: str) -> tuple[str, str]:
        return tenant_pk(tenant_id), compose("CHANNEL", channel_id)


class RouteModel(_Base):
    """pk=ROUTE#<route_key>  sk=ROUTE — unique claim of a provider address by one channel."""

    class Meta(_Base.Meta):
        abstract = False

    tenant_id = UnicodeAttribute()
    channel_id = UnicodeAttribute()

    @staticmethod
    def key(route_key: str) -> tuple[str, str]:
        return compose("ROUTE", route_key), "ROUTE"


# ------------------------------------------------------------------------------------ conversations table
class ActivityIndex(GlobalSecondaryIndex["ConversationModel"]):
    """Inbox: a tenant's conversations by last activity (gsi1pk=TENANT#<t>, gsi1sk=<last_message_at>#<id>)."""

    class Meta:
        index_name = "by_activity"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ContactModel(_Base):
    """pk=TENANT#<tenant>  sk=CONTACT#<contact_id> (``ct_…``, derived from the contact's anchor identity).

    Items written before contacts had ids are keyed ``CONTACT#<E.164>`` and hold only tenant_id, phone, name,
    wa_id, created_at and last_inbound_at: ``python -m local.migrate`` moves them (docs/decisions.md, "Contacts
    with their own ids"). ``conversation_ids`` lists the contact's one-to-one conversations (one per channel) and
    ``group_conversation_ids`` the groups it wrote in, so that everything held about a contact can be found.
    """

    class Meta(_Base.Meta):
        abstract = False

    tenant_id = UnicodeAttribute()
    contact_id = UnicodeAttribute(null=True)
    anchor_kind = UnicodeAttribute(null=True)
    anchor = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    wa_user_id = UnicodeAttribute(null=True)
    parent_user_id = UnicodeAttribute(null=True)
    username = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    wa_id = UnicodeAttribute(null=True)
    registered = BooleanAttribute(null=True)
    opted_out = BooleanAttribute(null=True)
    opted_out_at = UnicodeAttribute(null=True)
    marketing_opted_out = BooleanAttribute(null=True)
    marketing_opted_out_at = UnicodeAttribute(null=True)
    attributes = JSONAttribute(null=True)
    tags = JSONAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    last_inbound_at = UnicodeAttribute(null=True)
    conversation_ids = UnicodeSetAttribute(null=True)
    group_conversation_ids = UnicodeSetAttribute(null=True)

    @staticmethod
    def key(tenant_id: str, contact_id: str) -> tuple[str, str]:
        return tenant_pk(tenant_id), compose("CONTACT", contact_id)

    @staticmethod
    def legacy_key(tenant_id: str, phone: str) -> tuple[str, str]:
        """Where a contact was stored before contacts had ids (E.164 phones start with ``+``, ids with ``ct_``)."""
        return tenant_pk(tenant_id), compose("CONTACT", phone)


class IdentityModel(_Base):
    """pk=TENANT#<tenant>  sk=IDENTITY#<phone|wa>#<E.164 or BSUID> — unique claim of a phone number or a BSUID by
    one contact of the tenant (conditional writes, like the channels' route claims)."""

    class Meta(_Base.Meta):
        abstract = False

    tenant_id = UnicodeAttribute()
    contact_id = UnicodeAttribute(null=True)  # absent on a tombstone left by an erasure
    anchor_kind = UnicodeAttribute(null=True)
    anchor = UnicodeAttribute(null=True)
    generation = NumberAttribute(null=True)  # erasures so far: the next contact of this identity is a new one

    @staticmethod
    def key(tenant_id: str, kind: str, value: str) -> tuple[str, str]:
        return tenant_pk(tenant_id), compose("IDENTITY", kind, value)


class ConversationModel(_Base):
    """pk=TENANT#<tenant>  sk=CONV#<conversation_id> (id derived from channel + the contact's anchor, or + group)."""

    class Meta(_Base.Meta):
        abstract = False

    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_activity = ActivityIndex()

    tenant_id = UnicodeAttribute()
    conversation_id = UnicodeAttribute()
    channel_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    kind = UnicodeAttribute(null=True)  # direct (absent on conversations stored before groups) | group
    group_id = UnicodeAttribute(null=True)
    contact_id = UnicodeAttribute(null=True)  # absent before migration: derived from contact_phone
    contact_phone = UnicodeAttribute(null=True)
    contact_wa_user_id = UnicodeAttribute(null=True)
    contact_username = UnicodeAttribute(null=True)
    contact_name = UnicodeAttribute(null=True)
    location_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    last_message_at = UnicodeAttribute(null=True)
    last_inbound_at = UnicodeAttribute(null=True)
    last_message_preview = UnicodeAttribute(null=True)
    unread_count = NumberAttribute(default=0)
    bot_mode = UnicodeAttribute(null=True)
    operator_lock_until = UnicodeAttribute(null=True)

    @staticmethod
    def key(tenant_id: str, conversation_id: str) -> tuple[str, str]:
        return tenant_pk(tenant_id), compose("CONV", conversation_id)

    @staticmethod
    def activity_key(last_message_at: str, conversation_id: str) -> str:
        return compose(last_message_at, conversation_id)


# ----------------------------------------------------------------------------------------- messages table
class MessageModel(_Base):
    """pk=TENANT#<tenant>#CONV#<conversation_id>  sk=MSG#<created_at>#<message_id> (newest first = reverse)."""

    class Meta(_Base.Meta):
        abstract = False

    item_type = UnicodeAttribute(default="message")
    tenant_id = UnicodeAttribute()
    conversation_id = UnicodeAttribute()
    message_id = UnicodeAttribute()
    channel_id = UnicodeAttribute()
    direction = UnicodeAttribute()
    provider = UnicodeAttribute()
    provider_message_id = UnicodeAttribute(null=True)
    type = UnicodeAttribute()
    text = UnicodeAttribute(null=True)
    media = ListAttribute(of=MapAttribute, default=list)
    location = JSONAttribute(null=True)
    context = JSONAttribute(null=True)
    content = JSONAttribute(null=True)
    status = UnicodeAttribute()
    status_rank = NumberAttribute(null=True)
    status_details = JSONAttribute(null=True)
    error = JSONAttribute(null=True)
    sender = JSONAttribute(default=dict)
    origin = UnicodeAttribute(null=True)  # business_app: an echo (the stream filter lets its INSERT through)
    created_at = UnicodeAttribute()
    received_at = UnicodeAttribute(null=True)
    edited_at = UnicodeAttribute(null=True)
    deleted_at = UnicodeAttribute(null=True)
    status_updated_at = UnicodeAttribute(null=True)

    @staticmethod
    def partition(tenant_id: str, conversation_id: str) -> str:
        return compose(TENANT, tenant_id, "CONV", conversation_id)

    @staticmethod
    def sort(created_at: str, message_id: str) -> str:
        return compose("MSG", created_at, message_id)


class ProviderMessageModel(_Base):
    """pk=TENANT#<tenant>#PMSG#<provider>#<provider_message_id>  sk=PMSG.

    The dedupe claim of an inbound message (its conditional put makes a redelivery change nothing) and the
    index from a provider message id to our message, used by status updates. A status that arrives before its
    message is known is parked here and merged when the message records its provider id. ``expires_at`` (the
    messages table's TTL attribute) is set only while a status, or an edit or deletion of an inbound message not
    stored yet (D26), is parked and nothing claims the id; claims that point at a message never expire
    (docs/decisions.md D1).
    """

    class Meta(_Base.Meta):
        abstract = False

    item_type = UnicodeAttribute(default="provider_message")
    tenant_id = UnicodeAttribute()
    message_pk = UnicodeAttribute(null=True)
    message_sk = UnicodeAttribute(null=True)
    pending_status = UnicodeAttribute(null=True)
    pending_rank = NumberAttribute(null=True)
    pending_error = JSONAttribute(null=True)
    pending_at = UnicodeAttribute(null=True)
    pending_details = JSONAttribute(null=True)
    # An edit or deletion of an inbound message not seen yet (docs/decisions.md D26): {kind, text, at, provider id}
    pending_amendment = JSONAttribute(null=True)
    expires_at = NumberAttribute(null=True)

    @staticmethod
    def key(tenant_id: str, provider: str, provider_message_id: str) -> tuple[str, str]:
        return compose(TENANT, tenant_id, "PMSG", provider, provider_message_id), "PMSG"


# -------------------------------------------------------------------------------------- idempotency table
class IdempotencyModel(Model):
    """pk=TENANT#<tenant>#<scope>#<key>; expires_at is the table's TTL attribute."""

    class Meta:
        table_name = "unbound"
        region = "us-east-1"
        max_retry_attempts = 3

    pk = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute()
    request_hash = UnicodeAttribute(null=True)
    state = UnicodeAttribute(default="in_progress")
    result = JSONAttribute(null=True)


_TABLES: dict[str, list[type[Model]]] = {
    "channels_table": [ChannelModel, RouteModel],
    "conversations_table": [ContactModel, IdentityModel, ConversationModel],
    "messages_table": [MessageModel, ProviderMessageModel],
    "idempotency_table": [IdempotencyModel],
}


@lru_cache(maxsize=1)
def transaction_connection() -> Connection:
    """The connection TransactWrite uses; shared so a warm function reuses its HTTP connections."""
    return Connection(region=ChannelModel.Meta.region)


def bind_tables(settings: Settings) -> None:
    """Point every model at its table. Called once per cold start (and by tests after they change settings)."""
    for setting_name, models in _TABLES.items():
        for model in models:
            model.Meta.table_name = getattr(settings, setting_name)
            model.Meta.region = settings.region
            model._connection = None  # a new table name or endpoint needs a new connection
    transaction_connection.cache_clear()


def item_to_dict(item: Any) -> dict[str, Any]:
    """Plain-JSON view of a model instance (used by tests and the event publisher)."""
    return dict(item.attribute_values)
