"""The move to contacts with their own ids, against moto with data written in the old shape (docs/decisions.md,
"Contacts with their own ids"): the gateway keeps working before, during and after ``python -m local.migrate``,
which is resumable and idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from gateway.bootstrap import ready
from gateway.domain import ids
from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.contact import ContactRef, IdentityKind, first_link
from gateway.domain.message import InboundMessage
from gateway.services.inbox import InboxService
from gateway.store.contacts_repo import ContactRepository
from gateway.store.messages_repo import MessageRepository

from local.migrate import migrate
from local.provision import Resources

TENANT = "acme"
PHONES = [f"+1415555{i:04d}" for i in range(7)]


def channel() -> Channel:
    return Channel(
        tenant_id=TENANT,
        channel_id="ch_main",
        provider=Provider.TWILIO,
        name="Main",
        phone_number="+14155238886",
        status=ChannelStatus.ACTIVE,
        created_at="2025-01-01T00:00:00.000Z",
        updated_at="2025-01-01T00:00:00.000Z",
        credentials_ciphertext="x",
    )


@pytest.fixture
def table(aws: Resources) -> Any:
    ready()
    ContactRepository.cache.clear()
    return boto3.resource("dynamodb", region_name="us-east-1").Table(aws.ref("ConversationsTable"))


def write_old_shape(table: Any) -> None:
    """Contacts and conversations exactly as the gateway wrote them before contacts had ids."""
    for n, phone in enumerate(PHONES):
        created = f"2025-03-0{n + 1}T10:00:00.000Z"
        table.put_item(Item={"pk": f"TENANT#{TENANT}", "sk": f"CONTACT#{phone}", "tenant_id": TENANT, "phone": phone,
                             "name": f"Old {n}", "wa_id": phone[1:], "created_at": created,
                             "last_inbound_at": created})
        conversation_id = ids.conversation_id(TENANT, "ch_main", phone)
        table.put_item(Item={"pk": f"TENANT#{TENANT}", "sk": f"CONV#{conversation_id}", "tenant_id": TENANT,
                             "conversation_id": conversation_id, "channel_id": "ch_main", "provider": "twilio",
                             "contact_phone": phone, "contact_name": f"Old {n}", "created_at": created,
                             "last_message_at": created, "last_inbound_at": created, "unread_count": 1,
                             "gsi1pk": f"TENANT#{TENANT}", "gsi1sk": f"{created}#{conversation_id}"})


def inbound(phone: str, sid: str) -> InboundMessage:
    return InboundMessage("twilio", sid, ContactRef(phone=phone, name="New name"), "text", text="hello again")


def legacy_items(table: Any) -> list[dict[str, Any]]:
    return [i for i in table.scan()["Items"] if i["sk"].startswith("CONTACT#+")]


def test_before_the_migration_old_conversations_are_served_and_new_messages_join_them(table: Any) -> None:
    write_old_shape(table)
    items = InboxService().list_conversations(TENANT, 50, None)["items"]
    (listed,) = [c for c in items if c["contact"]["phone"] == PHONES[0]]
    expected_id = first_link(TENANT, ContactRef(phone=PHONES[0])).contact_id
    assert listed["contact"]["id"] == expected_id  # derived: no migration needed to read

    MessageRepository().record_inbound(channel(), inbound(PHONES[0], "SM" + "a" * 32))

    conversations = InboxService().list_conversations(TENANT, 50, None)["items"]
    assert len(conversations) == len(PHONES)  # the message joined the old conversation
    assert conversations[0]["contact"]["id"] == expected_id


def test_the_migration_moves_every_contact_and_links_every_conversation_resumably(table: Any, tmp_path: Path) -> None:
    write_old_shape(table)
    # a webhook wrote the new record of one contact before the migration reached it (lazy repair)
    MessageRepository().record_inbound(channel(), inbound(PHONES[3], "SM" + "b" * 32), now="2026-02-01T00:00:00.000Z")
    checkpoint = tmp_path / "checkpoint.json"

    interrupted = migrate(checkpoint=checkpoint, page_size=3, max_pages=2, log=lambda _: None)
    assert not interrupted.done and interrupted.pages == 2
    finished = migrate(checkpoint=checkpoint, resume=True, page_size=3, log=lambda _: None)
    assert finished.done and not finished.failed
    again = migrate(checkpoint=tmp_path / "fresh.json", page_size=3, log=lambda _: None)  # idempotent
    assert again.done and not again.failed and again.contacts == 0

    assert legacy_items(table) == []
    contacts = ContactRepository()
    for n, phone in enumerate(PHONES):
        contact = contacts.find_by_phone(TENANT, phone)
        assert contact is not None, phone
        assert contact.contact_id == first_link(TENANT, ContactRef(phone=phone)).contact_id
        assert contact.created_at == f"2025-03-0{n + 1}T10:00:00.000Z"  # the earliest wins, also over the webhook's
        assert contact.name == ("New name" if n == 3 else f"Old {n}")
        footprint = contacts.footprint(TENANT, contact.contact_id)
        assert footprint.conversation_ids == [ids.conversation_id(TENANT, "ch_main", phone)]
        assert footprint.identity_keys == [(f"TENANT#{TENANT}", f"IDENTITY#{IdentityKind.PHONE.value}#{phone}")]
    for conversation in InboxService().list_conversations(TENANT, 50, None)["items"]:
        stored = table.get_item(Key={"pk": f"TENANT#{TENANT}", "sk": f"CONV#{conversation['id']}"})["Item"]
        assert stored["contact_id"] == conversation["contact"]["id"] and stored["kind"] == "direct"


def test_after_the_migration_a_message_is_one_request_and_the_same_conversation(table: Any, tmp_path: Path) -> None:
    import botocore.client

    write_old_shape(table)
    migrate(checkpoint=tmp_path / "c.json", log=lambda _: None)
    ContactRepository.cache.clear()  # a cold instance after the migration
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        MessageRepository().record_inbound(channel(), inbound(PHONES[5], "SM" + "c" * 32))
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
    assert calls == ["TransactWriteItems"]
    assert len(InboxService().list_conversations(TENANT, 50, None)["items"]) == len(PHONES)
