"""Fault matrix, webhooks and channels: DynamoDB throttling and errors on every write they do, KMS errors.

Outcome everywhere: the failing request answers 5xx and writes nothing (the tables hold no half-written
message, claim, conversation or channel); the provider's redelivery (Meta retries any non-200; Twilio calls the
Fallback URL, which deployments set to the same webhook URL) is stored exactly once, and later redeliveries
change nothing. A single throttle is absorbed by the SDK's own retries and never reaches the provider.
"""

from __future__ import annotations

import pytest

from tests.faults.faultlib import INTERNAL, THROTTLED, THROTTLING, FaultInjector, mentions, on_table
from tests.faults.harness import Gateway, body_of, new_sid

DYNAMODB_ERRORS = [THROTTLED, THROTTLING, INTERNAL]


def assert_twiml(response: dict) -> None:
    assert response["statusCode"] == 200, response
    assert response["body"] == "<Response/>"


def assert_5xx(response: dict) -> None:
    assert response["statusCode"] == 500, response
    assert body_of(response)["error"]["code"] == "internal_error"
    assert "injected" not in str(response["body"])  # the cause stays in the logs


# ---------------------------------------------------------------------------------------------- Twilio inbound
def test_twilio_inbound_transaction_fails_then_the_fallback_delivery_is_stored_once(
    gateway: Gateway, faults: FaultInjector
) -> None:
    channel = gateway.twilio_channel()
    delivered = []
    for code in DYNAMODB_ERRORS:
        params = gateway.twilio_form()
        fault = faults.fail("dynamodb", "TransactWriteItems", code, match=on_table(gateway.aws.ref("MessagesTable")))

        assert_5xx(gateway.twilio_inbound(params))  # Twilio sees a failure, never a 200 for a message we lost

        assert fault.injected == 1, code
        assert gateway.tables().provider_ids() == sorted(delivered), code  # nothing of this message was written
        faults.heal()
        assert_twiml(gateway.twilio_fallback(params))  # the Fallback URL gets the same message: stored
        assert_twiml(gateway.twilio_inbound(params))  # any later redelivery: a duplicate, nothing changes
        delivered.append(params["MessageSid"])
    tables = gateway.tables()
    assert tables.provider_ids() == sorted(delivered)
    assert {m["text"] for m in gateway.messages(gateway.conversation_id(channel))} == {"Hello there"}
    tables.assert_consistent()


def test_twilio_inbound_one_throttle_is_absorbed_by_the_sdk_retry(gateway: Gateway, faults: FaultInjector) -> None:
    gateway.twilio_channel()
    params = gateway.twilio_form()
    fault = faults.fail("dynamodb", "TransactWriteItems", THROTTLED, times=1, layer="wire")

    assert_twiml(gateway.twilio_inbound(params))

    assert fault.injected == 1 and fault.seen == 2  # botocore resent it
    tables = gateway.tables()
    assert tables.provider_ids() == [params["MessageSid"]]
    tables.assert_consistent()


def test_twilio_inbound_kms_failure_is_5xx_not_401_and_nothing_is_stored(gateway: Gateway,
                                                                         faults: FaultInjector) -> None:
    gateway.twilio_channel()
    params = gateway.twilio_form()
    faults.fail("kms", "Decrypt", "KMSInternalException")

    assert_5xx(gateway.twilio_inbound(params))  # a 401 would tell Twilio the request was forged

    assert gateway.tables().message_items() == []
    faults.heal()
    assert_twiml(gateway.twilio_fallback(params))
    gateway.tables().assert_consistent()
    assert gateway.tables().provider_ids() == [params["MessageSid"]]


# ---------------------------------------------------------------------------------------------- Meta inbound
def test_meta_batch_fails_on_its_second_message_then_metas_retry_stores_each_once(
    gateway: Gateway, faults: FaultInjector
) -> None:
    gateway.meta_channel()
    stored: list[str] = []
    for code in DYNAMODB_ERRORS:
        wamids = [f"wamid.{code}.{n}" for n in range(3)]
        payload = gateway.meta_messages(*wamids)
        fault = faults.fail("dynamodb", "TransactWriteItems", code, skip=1, times=1)

        assert_5xx(gateway.meta_post(payload))  # Meta retries the whole notification

        assert fault.injected == 1
        partial = gateway.tables()
        assert partial.provider_ids() == sorted([*stored, wamids[0]])  # the first whole, the second left no trace
        partial.assert_consistent()
        faults.heal()
        retried = gateway.meta_post(payload)
        assert retried["statusCode"] == 200 and body_of(retried)["stored"] == 2 and body_of(retried)["duplicates"] == 1
        again = body_of(gateway.meta_post(payload))
        assert (again["stored"], again["duplicates"]) == (0, 3)
        stored += wamids
    tables = gateway.tables()
    assert tables.provider_ids() == sorted(stored)
    tables.assert_consistent()


def test_meta_inbound_one_throttle_is_absorbed_by_the_sdk_retry(gateway: Gateway, faults: FaultInjector) -> None:
    gateway.meta_channel()
    fault = faults.fail("dynamodb", "TransactWriteItems", THROTTLED, times=1, layer="wire")

    response = gateway.meta_post(gateway.meta_messages("wamid.t1"))

    assert response["statusCode"] == 200 and body_of(response)["stored"] == 1
    assert fault.seen == 2
    gateway.tables().assert_consistent()


def test_meta_inbound_kms_failure_is_5xx_and_metas_retry_is_stored(gateway: Gateway, faults: FaultInjector) -> None:
    gateway.meta_channel()
    payload = gateway.meta_messages("wamid.k1")
    faults.fail("kms", "Decrypt", "KMSInternalException")

    assert_5xx(gateway.meta_post(payload))

    assert gateway.tables().message_items() == []
    faults.heal()
    assert body_of(gateway.meta_post(payload))["stored"] == 1
    gateway.tables().assert_consistent()


# ---------------------------------------------------------------------------------------------- statuses
def _sent_message(gateway: Gateway, channel: dict) -> dict:
    """An inbound message (opens the window), then an operator send: the outbound message is ``sent``."""
    if channel["provider"] == "twilio":
        assert_twiml(gateway.twilio_inbound(gateway.twilio_form()))
    else:
        assert gateway.meta_post(gateway.meta_messages("wamid.in-" + new_sid()))["statusCode"] == 200
    status, body = gateway.send(gateway.conversation_id(channel), {"type": "text", "text": "Hi"})
    assert status == 201, body
    return dict(body)


def test_twilio_status_update_fails_then_the_redelivery_applies_it_once(gateway: Gateway,
                                                                       faults: FaultInjector) -> None:
    channel = gateway.twilio_channel()
    sent = _sent_message(gateway, channel)
    current = "sent"
    # the last one is a late duplicate of "read": its failure and its redelivery change nothing either
    for code, status in zip(DYNAMODB_ERRORS, ("delivered", "read", "read"), strict=True):
        fault = faults.fail("dynamodb", "TransactWriteItems", code, match=on_table(gateway.aws.ref("MessagesTable")))

        assert_5xx(gateway.twilio_status(sent["provider_message_id"], status))

        assert fault.injected == 1
        (message,) = [m for m in gateway.messages(sent["conversation_id"]) if m["id"] == sent["id"]]
        assert message["status"] == current
        current = status
        faults.heal()
        assert_twiml(gateway.twilio_status(sent["provider_message_id"], status))
        assert_twiml(gateway.twilio_status(sent["provider_message_id"], status))  # duplicate: stale
        (message,) = [m for m in gateway.messages(sent["conversation_id"]) if m["id"] == sent["id"]]
        assert message["status"] == status
    gateway.tables().assert_consistent(unread_is_inbound_count=False)


def test_a_status_that_cannot_be_parked_is_5xx_and_parked_on_redelivery(gateway: Gateway,
                                                                       faults: FaultInjector) -> None:
    gateway.twilio_channel()
    unknown = new_sid()  # the callback beat the send's answer: the status is parked on the provider-id claim
    faults.fail("dynamodb", "TransactWriteItems", THROTTLED, match=mentions(f"#PMSG#twilio#{unknown}"))

    assert_5xx(gateway.twilio_status(unknown, "delivered"))

    assert gateway.tables().claims() == []
    faults.heal()
    assert_twiml(gateway.twilio_status(unknown, "delivered"))
    (claim,) = gateway.tables().claims()
    assert claim["pending_status"] == "delivered" and "message_pk" not in claim


def test_meta_status_update_fails_then_metas_retry_applies_it(gateway: Gateway, faults: FaultInjector) -> None:
    channel = gateway.meta_channel()
    sent = _sent_message(gateway, channel)
    payload = gateway.meta_statuses((sent["provider_message_id"], "delivered"), (sent["provider_message_id"], "read"))
    faults.fail("dynamodb", "TransactWriteItems", THROTTLING, match=on_table(gateway.aws.ref("MessagesTable")), skip=1)

    assert_5xx(gateway.meta_post(payload))  # "delivered" applied, "read" failed

    faults.heal()
    retried = body_of(gateway.meta_post(payload))
    assert retried["statuses"] == {"stale": 1, "applied": 1}
    (message,) = [m for m in gateway.messages(sent["conversation_id"]) if m["id"] == sent["id"]]
    assert message["status"] == "read"


# ---------------------------------------------------------------------------------------------- channels
def test_channel_create_fails_whole_and_the_retry_creates_it(gateway: Gateway, faults: FaultInjector) -> None:
    for code in DYNAMODB_ERRORS:
        faults.fail("dynamodb", "TransactWriteItems", code, times=1)

        status, body = gateway.channels("POST", "/v1/channels", {
            "provider": "twilio", "name": "Main", "phone_number": "+14155238886", "account_sid": "AC" + "1" * 32,
            "auth_token": "twilio-auth-token-0123456789"})

        assert status == 500 and body["error"]["code"] == "internal_error"
        assert gateway.tables().channels == []  # neither the channel nor its number's claim
    channel = gateway.twilio_channel()
    tables = gateway.tables()
    assert [c["channel_id"] for c in tables.channel_items()] == [channel["id"]] and len(tables.routes()) == 1
    tables.assert_consistent()


@pytest.mark.parametrize(("method", "change", "code"), [("PATCH", {"auth_token": "rotated-token-0123456789"}, INTERNAL),
                                                        ("DELETE", None, THROTTLED)])
def test_channel_replace_fails_whole_and_the_retry_applies_it(gateway: Gateway, faults: FaultInjector,
                                                              method: str, change: dict | None, code: str) -> None:
    channel = gateway.twilio_channel()
    before = gateway.tables()
    faults.fail("dynamodb", "TransactWriteItems", code, times=1)

    status, body = gateway.channels(method, f"/v1/channels/{channel['id']}", change)

    assert status == 500, body
    after = gateway.tables()
    assert after.channels == before.channels  # version, status, credentials and route claims untouched
    status, body = gateway.channels(method, f"/v1/channels/{channel['id']}", change)
    assert status in (200, 204), body
    after = gateway.tables()
    (item,) = after.channel_items()
    assert item["version"] == 2
    assert len(after.routes()) == (0 if method == "DELETE" else 1)
    after.assert_consistent()


def test_kms_encrypt_failure_creates_and_rotates_nothing(gateway: Gateway, faults: FaultInjector) -> None:
    channel = gateway.twilio_channel()
    before = gateway.tables()
    faults.fail("kms", "Encrypt", "KMSInternalException")

    created, _ = gateway.channels("POST", "/v1/channels", {
        "provider": "meta", "name": "Meta", "phone_number_id": "1065", "business_account_id": "1234",
        "display_phone_number": "+15550783881", "access_token": "EAAG-token-0123456789", "app_secret": "s-0123"})
    rotated, _ = gateway.channels("PATCH", f"/v1/channels/{channel['id']}", {"auth_token": "rotated-0123456789"})

    assert (created, rotated) == (500, 500)
    assert gateway.tables().channels == before.channels


def test_meta_verification_that_cannot_be_recorded_is_5xx_and_meta_retries(gateway: Gateway,
                                                                          faults: FaultInjector) -> None:
    channel = gateway.meta_channel()
    faults.fail("dynamodb", "UpdateItem", THROTTLED, match=on_table(gateway.aws.ref("ChannelsTable")))

    response = gateway.meta_verify(channel["verify_token"])

    assert response["statusCode"] == 500  # Meta shows the failure; the admin presses "Verify" again
    (item,) = gateway.tables().channel_items()
    assert "webhook_verified_at" not in item or item["webhook_verified_at"] is None
    faults.heal()
    answered = gateway.meta_verify(channel["verify_token"])
    assert answered["statusCode"] == 200 and answered["body"] == "1158201444"
    (item,) = gateway.tables().channel_items()
    assert item["webhook_verified_at"]
