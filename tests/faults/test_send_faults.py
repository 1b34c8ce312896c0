"""Fault matrix, sending (POST /v1/conversations/{id}/messages): DynamoDB and KMS faults on every write of a send.

Rules asserted: a fault BEFORE the provider call answers 5xx, sends nothing and leaves nothing ``queued`` (the
Idempotency-Key is released, so the client's retry with the same key sends exactly once); a fault AFTER the
provider accepted the message never turns into a 5xx (the client would send it again): the answer is the
truth, and the gap is logged and counted (``SendNotRecorded``). Provider requests are counted on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.faultlib import INTERNAL, THROTTLED, THROTTLING, FaultInjector, both, mentions, on_table
from tests.faults.harness import Gateway

TEXT = {"type": "text", "text": "On it"}


@pytest.fixture
def conversation(gateway: Gateway) -> str:
    """A Twilio conversation whose contact wrote a minute ago (free-form sends allowed)."""
    channel = gateway.twilio_channel()
    assert gateway.twilio_inbound(gateway.twilio_form())["statusCode"] == 200
    return gateway.conversation_id(channel)


def outbound(gateway: Gateway) -> list[dict[str, Any]]:
    return gateway.tables().message_items("outbound")


# ---------------------------------------------------------------------------------------------- before the provider
@pytest.mark.parametrize(
    ("what", "operation", "table", "stored_status", "code"),
    [
        ("idempotency claim", "PutItem", "IdempotencyTable", None, THROTTLED),
        ("queued message", "PutItem", "MessagesTable", None, INTERNAL),
        ("conversation activity + operator lock", "UpdateItem", "ConversationsTable", "failed", THROTTLING),
        ("idempotency progress", "UpdateItem", "IdempotencyTable", "failed", INTERNAL),
    ],
    ids=["idempotency-claim", "queued-message", "conversation", "idempotency-progress"],
)
def test_a_write_before_the_provider_call_fails_then_the_retry_sends_once(
    gateway: Gateway, faults: FaultInjector, conversation: str, what: str, operation: str, table: str,
    stored_status: str | None, code: str,
) -> None:
    fault = faults.fail("dynamodb", operation, code, match=on_table(gateway.aws.ref(table)), times=1)

    status, body = gateway.send(conversation, TEXT, key="k-1")

    assert fault.injected == 1, what
    assert status == 500 and body["error"]["code"] == "internal_error", body
    assert gateway.chaos.sends() == []  # nothing left for the provider
    # nothing half-written: no message at all, or one honestly marked failed ("not sent: storage failed")
    assert [m["status"] for m in outbound(gateway)] == ([stored_status] if stored_status else [])
    assert gateway.tables().idempotency == []  # the key was released: the retry may run

    status, body = gateway.send(conversation, TEXT, key="k-1")

    assert status == 201 and body["status"] == "sent", body
    assert len(gateway.chaos.sends()) == 1
    gateway.tables().assert_consistent()


def test_kms_failure_on_send_sends_and_stores_nothing(gateway: Gateway, faults: FaultInjector,
                                                     conversation: str) -> None:
    faults.fail("kms", "Decrypt", "KMSInternalException")

    status, body = gateway.send(conversation, TEXT, key="k-kms")

    assert status == 500, body
    assert gateway.chaos.sends() == [] and outbound(gateway) == [] and gateway.tables().idempotency == []
    faults.heal()
    assert gateway.send(conversation, TEXT, key="k-kms")[0] == 201
    assert len(gateway.chaos.sends()) == 1


def test_one_throttle_on_every_send_write_is_absorbed_by_the_sdk(gateway: Gateway, faults: FaultInjector,
                                                                conversation: str) -> None:
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "GetItem"):
        faults.fail("dynamodb", operation, THROTTLED, times=1, layer="wire")

    status, body = gateway.send(conversation, TEXT, key="k-wire")

    assert status == 201 and body["status"] == "sent", body
    assert [f.injected for f in faults.faults] == [1, 1, 1, 1] and len(gateway.chaos.sends()) == 1
    gateway.tables().assert_consistent()


# ---------------------------------------------------------------------------------------------- after the provider
@pytest.mark.parametrize("key", ["k-attach", None])
def test_provider_accepted_but_the_provider_id_cannot_be_recorded_answers_201_and_never_resends(
    gateway: Gateway, faults: FaultInjector, conversation: str, key: str | None
) -> None:
    faults.fail("dynamodb", "TransactWriteItems", INTERNAL, match=mentions("#PMSG#twilio#"))

    status, body = gateway.send(conversation, TEXT, key=key)

    assert status == 201, body  # a 5xx would make the client send the message a second time
    assert body["status"] == "sent" and body["provider_message_id"].startswith("SM")
    assert len(gateway.chaos.sends()) == 1
    (stored,) = outbound(gateway)
    assert stored["status"] == "queued" and "provider_message_id" not in stored  # the logged, counted gap
    if key:
        faults.heal()
        replayed_status, replayed = gateway.send(conversation, TEXT, key=key)
        assert (replayed_status, replayed["id"]) == (201, body["id"])
        assert len(gateway.chaos.sends()) == 1


def test_provider_refusal_that_cannot_be_recorded_still_answers_the_refusal(
    gateway: Gateway, faults: FaultInjector, conversation: str
) -> None:
    gateway.chaos.on("POST", r"/Messages\.json$", "500")  # outcome unknown: must never be resent
    faults.fail("dynamodb", "UpdateItem", INTERNAL,
                match=both(on_table(gateway.aws.ref("MessagesTable")), mentions('"failed"')))

    status, body = gateway.send(conversation, TEXT, key="k-fail")

    assert status == 502 and body["error"]["provider_error"]["code"] == "outcome_unknown", body
    assert len(gateway.chaos.sends()) == 1
    faults.heal()
    again_status, again = gateway.send(conversation, TEXT, key="k-fail")  # the client's retry: the same answer
    assert again_status == 502 and again["error"]["message_id"] == body["error"]["message_id"]
    assert len(gateway.chaos.sends()) == 1


def test_the_answer_of_a_sent_message_stands_when_its_idempotency_record_fails(
    gateway: Gateway, faults: FaultInjector, conversation: str
) -> None:
    faults.fail("dynamodb", "UpdateItem", INTERNAL, match=both(on_table(gateway.aws.ref("IdempotencyTable")),
                                                                mentions('"done"')))

    status, body = gateway.send(conversation, TEXT, key="k-done")

    assert status == 201 and body["status"] == "sent", body
    assert len(gateway.chaos.sends()) == 1
    (key_item,) = gateway.tables().idempotency
    assert key_item["state"] == "in_progress"  # a retry now waits, then recovers from the stored message
    gateway.tables().assert_consistent()


# ---------------------------------------------------------------------------------------------- the inbox's own writes
def test_conversation_patch_fails_whole_and_the_retry_applies_it(gateway: Gateway, faults: FaultInjector,
                                                                 conversation: str) -> None:
    before = gateway.tables().conversation_items()
    faults.fail("dynamodb", "UpdateItem", THROTTLED, times=1)
    change = {"bot_mode": "off", "release_operator_lock": True}

    status, body = gateway.call("InboxApiFunction", "PATCH", f"/v1/conversations/{conversation}", json=change,
                                admin=False)

    assert status == 500, body
    assert gateway.tables().conversation_items() == before
    status, body = gateway.call("InboxApiFunction", "PATCH", f"/v1/conversations/{conversation}", json=change,
                                admin=False)
    assert status == 200 and body["bot_mode"] == "off", body


def test_read_receipt_whose_unread_reset_fails_is_5xx_and_the_retry_sends_it_again(
    gateway: Gateway, faults: FaultInjector
) -> None:
    channel = gateway.meta_channel()
    assert gateway.meta_post(gateway.meta_messages("wamid.to-read"))["statusCode"] == 200
    conversation = gateway.conversation_id(channel)
    faults.fail("dynamodb", "UpdateItem", INTERNAL, match=on_table(gateway.aws.ref("ConversationsTable")), times=1)

    status, body = gateway.send(conversation, {"type": "read", "message_id": "wamid.to-read"})

    assert status == 500, body  # Meta got the receipt; marking it again is harmless (idempotent at Meta)
    assert gateway.tables().conversation_items()[0]["unread_count"] == 1
    status, body = gateway.send(conversation, {"type": "read", "message_id": "wamid.to-read"})
    assert status == 200, body
    assert len(gateway.chaos.sends()) == 2 and gateway.tables().message_items("outbound") == []
    assert gateway.tables().conversation_items()[0]["unread_count"] == 0
