"""Fault matrix, the inbound processor (DynamoDB stream → media to S3, auto-reply, events): every write it does,
KMS, S3 and EventBridge failing once or for good.

Records are delivered by the local stack's poller exactly as Lambda's event source mapping does (batch item
failures, bisection, 3 retries, then the batch's metadata on the dead-letter queue), and dead letters are
re-driven by ``make replay``'s code. Outcome everywhere: a fault fails the record, the retry finishes it; a
fault that outlasts the retries dead-letters the batch and the replay finishes it; in every case the auto-reply
reaches the provider exactly once, media end up ``stored`` and nothing stays half-written (no reply left
``queued``, no orphan reply, no open multipart upload).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from gateway.config import get_settings

from local.poller import StreamPoller
from local.replay import replay
from tests.faults.faultlib import INTERNAL, THROTTLED, THROTTLING, FaultInjector, both, mentions, on_table
from tests.faults.harness import ACCOUNT, Gateway
from tests.integration.test_inbound_processor import FUNCTION, Stack

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(64 * 1024)
AUTO_REPLY = {"mode": "on", "rules": [{"keywords": ["price"], "reply": "Our prices: example.com/prices"}],
              "fallback": None}


def inbound_with_media(gateway: Gateway, content: bytes = JPEG, mime_type: str = "image/jpeg") -> dict[str, str]:
    """A Twilio message asking for prices with one image (Twilio's media URL on the chaos front)."""
    media = gateway.chaos.upload_media(content, mime_type, account_sid=ACCOUNT)
    params = gateway.twilio_form(Body="what is the price?", NumMedia="1", MessageType="image",
                                 MediaUrl0=media["twilio_url"], MediaContentType0=mime_type)
    assert gateway.twilio_inbound(params)["statusCode"] == 200
    return params


def replay_dead_letters(gateway: Gateway, processor: Stack) -> Any:
    return replay(boto3.client("sqs"), boto3.client("dynamodbstreams"), gateway.aws.ref("DeadLetterQueue"),
                  lambda _arn, event: processor.runtime.invoke(FUNCTION, event), lambda _arn: processor.patterns)


def assert_done(gateway: Gateway, content: bytes = JPEG) -> None:
    """One reply, sent once; the media stored in S3; nothing half-written; no multipart upload left open."""
    tables = gateway.tables()
    tables.assert_consistent()
    (reply,) = tables.message_items("outbound")
    assert reply["status"] == "sent" and reply["text"] == "Our prices: example.com/prices"
    assert len(gateway.chaos.sends()) == 1, gateway.chaos.sends()
    (message,) = tables.message_items("inbound")
    (media,) = message["media"]
    assert media["status"] == "stored", media
    s3 = boto3.client("s3")
    bucket = get_settings().media_bucket
    assert s3.get_object(Bucket=bucket, Key=media["s3_key"])["Body"].read() == content
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    (claim,) = tables.idempotency
    assert claim["state"] == "done"


@pytest.fixture
def poller(processor: Stack) -> StreamPoller:
    return processor.poller()


@pytest.fixture
def twilio_auto_reply(gateway: Gateway) -> dict[str, Any]:
    return gateway.twilio_channel(AUTO_REPLY)


# ---------------------------------------------------------------------------------------------- DynamoDB
WRITES = {
    # what the processor writes → (operation, predicate factory)
    "auto-reply claim": ("PutItem", lambda g: on_table(g.aws.ref("IdempotencyTable"))),
    "auto-reply queued message": ("PutItem", lambda g: on_table(g.aws.ref("MessagesTable"))),
    "auto-reply progress": ("UpdateItem", lambda g: both(on_table(g.aws.ref("IdempotencyTable")),
                                                         mentions("message_pk"))),
    "auto-reply provider id": ("TransactWriteItems", lambda g: on_table(g.aws.ref("MessagesTable"))),
    "auto-reply claim closed": ("UpdateItem", lambda g: both(on_table(g.aws.ref("IdempotencyTable")),
                                                             mentions('"done"'))),
    "media stored": ("UpdateItem", lambda g: both(on_table(g.aws.ref("MessagesTable")), mentions('"stored"'))),
    # cosmetic (the inbox order): logged, never retried, the reply stands
    "auto-reply inbox activity": ("UpdateItem", lambda g: on_table(g.aws.ref("ConversationsTable"))),
}


@pytest.mark.parametrize(("write", "code"),
                         [(w, (THROTTLED, INTERNAL, THROTTLING)[n % 3]) for n, w in enumerate(WRITES)])
def test_a_processor_write_failing_once_is_finished_by_the_retry(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller,
    twilio_auto_reply: dict[str, Any], write: str, code: str,
) -> None:
    inbound_with_media(gateway)
    operation, predicate = WRITES[write]
    fault = faults.fail("dynamodb", operation, code, times=1, match=predicate(gateway))

    poller.drain()

    assert fault.injected == 1, write
    assert processor.dead_letters() == []
    assert_done(gateway)


@pytest.mark.parametrize("write", ["auto-reply claim", "auto-reply provider id", "media stored"])
def test_a_processor_write_failing_for_good_is_dead_lettered_and_the_replay_finishes_it(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller,
    twilio_auto_reply: dict[str, Any], write: str,
) -> None:
    inbound_with_media(gateway)
    operation, predicate = WRITES[write]
    fault = faults.fail("dynamodb", operation, THROTTLED, match=predicate(gateway))

    poller.drain()

    assert fault.injected >= 4, write  # the first delivery and MaximumRetryAttempts (3) retries
    assert processor.dead_letters(), "dead-lettered"
    assert len(gateway.chaos.sends()) <= 1  # never a second reply, whatever failed
    faults.heal()
    report = replay_dead_letters(gateway, processor)
    assert report.ok, report.summary()
    assert processor.dead_letters() == []
    poller.drain()  # the replay's own writes (the reply's status change) go through the stream as usual
    assert_done(gateway)


def test_one_throttle_on_each_processor_write_is_absorbed_by_the_sdk(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller, twilio_auto_reply: dict[str, Any]
) -> None:
    inbound_with_media(gateway)
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "GetItem"):
        faults.fail("dynamodb", operation, THROTTLED, times=1, layer="wire")

    first = poller.poll_once()

    assert first >= 1
    poller.drain()
    assert processor.dead_letters() == []
    assert all(f.injected == 1 for f in faults.faults)
    assert_done(gateway)


# ---------------------------------------------------------------------------------------------- KMS
def test_kms_failure_takes_no_claim_and_the_replay_replies_once(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller, twilio_auto_reply: dict[str, Any]
) -> None:
    inbound_with_media(gateway)
    faults.fail("kms", "Decrypt", "KMSInternalException")

    poller.drain()

    assert processor.dead_letters()
    tables = gateway.tables()
    assert tables.idempotency == [] and tables.message_items("outbound") == []  # nothing claimed, nothing stored
    assert gateway.chaos.sends() == []
    faults.heal()
    assert replay_dead_letters(gateway, processor).ok
    poller.drain()
    assert_done(gateway)


# ---------------------------------------------------------------------------------------------- S3
def test_s3_upload_failing_once_is_retried_by_the_stream(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller, twilio_auto_reply: dict[str, Any]
) -> None:
    inbound_with_media(gateway)
    fault = faults.fail("s3", "PutObject", "InternalError", times=1)
    absorbed = faults.fail("s3", "PutObject", "SlowDown", times=1, layer="wire")  # on the retry: the SDK resends

    poller.drain()

    assert (fault.injected, absorbed.injected) == (1, 1) and processor.dead_letters() == []
    assert_done(gateway)


@pytest.mark.parametrize(("operation", "size"), [("PutObject", 64 * 1024), ("UploadPart", 6 * 1024 * 1024)])
def test_s3_failing_for_good_dead_letters_leaves_no_upload_open_and_the_replay_stores(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller,
    twilio_auto_reply: dict[str, Any], operation: str, size: int,
) -> None:
    content = b"%PDF-1.7\n" + os.urandom(size)
    inbound_with_media(gateway, content, "application/pdf")
    faults.fail("s3", operation, "InternalError")

    poller.drain()

    assert processor.dead_letters()
    (message,) = gateway.tables().message_items("inbound")
    assert message["media"][0]["status"] == "pending"  # retryable: never marked failed
    assert boto3.client("s3").list_multipart_uploads(Bucket=get_settings().media_bucket).get("Uploads", []) == []
    assert len(gateway.chaos.sends()) == 1  # the reply went out on the first delivery, never again
    faults.heal()
    assert replay_dead_letters(gateway, processor).ok
    poller.drain()
    assert_done(gateway, content)


# ---------------------------------------------------------------------------------------------- EventBridge
def test_eventbridge_failing_for_good_dead_letters_and_the_replay_publishes(
    gateway: Gateway, faults: FaultInjector, processor: Stack, poller: StreamPoller, twilio_auto_reply: dict[str, Any]
) -> None:
    inbound_with_media(gateway)
    fault = faults.fail("events", "PutEvents", "InternalException")

    poller.drain()

    assert fault.injected >= 4 and processor.dead_letters()
    faults.heal()
    before = faults.count("events", "PutEvents")
    assert replay_dead_letters(gateway, processor).ok
    poller.drain()
    assert faults.count("events", "PutEvents") > before  # message.received (and the reply's events) published
    assert_done(gateway)
