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
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
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
class ChannelModel(_Base):
    """pk=TENANT#<tenant>  sk=CHANNEL#<channel_id>"""

    class Meta(_Base.Meta):
        abstract = False

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
    """pk=TENANT#<tenant>  sk=CONTACT#<E.164 phone>"""

    class Meta(_Base.Meta):
        abstract = False

    tenant_id = UnicodeAttribute()
    phone = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    wa_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    last_inbound_at = UnicodeAttribute(null=True)

    @staticmethod
    def key(tenant_id: str, phone: str) -> tuple[str, str]:
        return tenant_pk(tenant_id), compose("CONTACT", phone)


class ConversationModel(_Base):
    """pk=TENANT#<tenant>  sk=CONV#<conversation_id> (id derived from channel + contact phone)."""

    class Meta(_Base.Meta):
        abstract = False

    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_activity = ActivityIndex()

    tenant_id = UnicodeAttribute()
    conversation_id = UnicodeAttribute()
    channel_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    contact_phone = UnicodeAttribute()
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
    created_at = UnicodeAttribute()
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
    messages table's TTL attribute) is set only while a status is parked and nothing claims the id; claims that
    point at a message never expire (docs/decisions.md D1).
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
    "conversations_table": [ContactModel, ConversationModel],
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
