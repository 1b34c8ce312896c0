"""The inbound processor against moto (in-process) with real HTTP for media and the provider sandbox.

Messages are stored through ``MessageRepository.record_inbound`` (what the webhooks do); the handler gets the
records of moto's own DynamoDB stream, in Lambda's shape, filtered by the template's FilterCriteria, or they
are fed by the local stack's poller (retries, bisection, the dead-letter queue) exactly as in ``make dev``.
Media come from a local HTTP server that behaves like Twilio (Basic auth, then a redirect to a CDN host that
refuses any Authorization header) and from the provider sandbox (Meta's media id → URL → Bearer download).
Auto-replies go to the sandbox, which records what it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway.aws import client as aws_client
from gateway.bootstrap import ready
from gateway.config import get_settings
from gateway.domain import ids
from gateway.domain.channel import AutoReplyConfig, Channel, route_key_twilio
from gateway.domain.message import InboundMessage, MediaRef
from gateway.domain.status import StatusUpdate
from gateway.services.channels import ChannelPatch, ChannelService, MetaChannelIn, TwilioChannelIn
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import ConversationModel, IdempotencyModel, MessageModel

from local.filters import matches_any
from local.http_gateway import LocalHttpServer, serve_in_thread
from local.poller import StreamPoller, _lambda_record
from local.provision import Resources
from local.replay import replay
from local.runtime import FunctionRuntime
from local.sandbox import ProviderSandbox, default_sandbox
from local.testing import MediaHost, at_once

FUNCTION = "InboundProcessorFunction"
TENANT = "acme"
ACCOUNT = "AC" + "1234abcd" * 4
TOKEN = "twilio-auth-token-0123456789"
META_TOKEN = "EAAG-meta-token-0123456789"
CONTACT = "+14155550100"
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024)
PDF = b"%PDF-1.7\n" + os.urandom(6 * 1024 * 1024 + 17)  # over the 5 MB part size: a multipart upload
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(200 * 1024)
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()


# ---------------------------------------------------------------------------------------------- media server
@pytest.fixture(scope="module")
def media_host() -> Iterator[MediaHost]:
    """/api/<name>: Basic auth required, 307 to the CDN on another host name; /cdn/<name>: no credentials."""
    with MediaHost({"ME0": (JPEG, "image/jpeg"), "ME1": (PDF, "application/pdf")}, basic=BASIC) as host:
        yield host


@pytest.fixture
def media_server(media_host: MediaHost) -> str:
    media_host.hits.clear()
    return media_host.url


# ---------------------------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    aws: Resources
    sandbox: ProviderSandbox
    sandbox_url: str
    runtime: FunctionRuntime
    _iterators: dict[str, str | None] = field(default_factory=dict)

    @property
    def patterns(self) -> tuple[dict[str, Any], ...]:
        (source,) = [s for s in self.aws.template.stream_sources() if s.function_id == FUNCTION]
        return source.filter_patterns

    def invoke(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self.runtime.invoke(FUNCTION, {"Records": records})  # type: ignore[no-any-return]

    def new_records(self) -> list[dict[str, Any]]:
        """Records written to the messages stream since the last call that the template's filters accept."""
        streams = boto3.client("dynamodbstreams")
        arn = self.aws.get_att("MessagesTable", "StreamArn")
        records = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue
            page = streams.get_records(ShardIterator=iterator)
            self._iterators[shard_id] = page.get("NextShardIterator")
            records += [_lambda_record(r, arn) for r in page["Records"]]
        return [r for r in records if matches_any(self.patterns, r)]

    def process(self) -> dict[str, Any]:
        records = self.new_records()
        assert records, "nothing new in the stream"
        return self.invoke(records)

    def sends(self) -> list[dict[str, Any]]:
        return [r for r in self.sandbox.requests()
                if r["method"] == "POST" and (r["path"].endswith("/Messages.json") or r["path"].endswith("/messages"))]

    def poller(self, invoke: Callable[[str, dict[str, Any]], Any] | None = None) -> StreamPoller:
        return StreamPoller(self.aws, invoke or self.runtime.invoke, lambda s: boto3.client(s),
                            enabled_functions={FUNCTION}, retry_delay=0)

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        answer = sqs.receive_message(QueueUrl=self.aws.ref("DeadLetterQueue"), MaxNumberOfMessages=10,
                                     VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


@pytest.fixture
def stack(aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    sandbox = default_sandbox()
    server = LocalHttpServer(("127.0.0.1", 0), sandbox.handle)
    serve_in_thread(server, "sandbox")
    url = f"http://127.0.0.1:{server.port}"
    monkeypatch.setenv("TWILIO_API_BASE_URL", url)
    monkeypatch.setenv("META_GRAPH_BASE_URL", url)
    monkeypatch.setenv("MEDIA_ALLOWED_HOSTS", "127.0.0.1,localhost")
    monkeypatch.setenv("MEDIA_ALLOW_LOOPBACK", "true")  # the sandbox serves media over http on 127.0.0.1
    monkeypatch.setenv("PUBLIC_BASE_URL", url)  # Twilio status callbacks of auto-replies land on the sandbox
    get_settings.cache_clear()
    ready()
    try:
        yield Stack(aws, sandbox, url, FunctionRuntime(aws, max_concurrency=10))
    finally:
        server.shutdown()
        server.server_close()


def twilio_channel(auto_reply: dict[str, Any] | None = None) -> Channel:
    service = ChannelService()
    channel = service.create(TENANT, TwilioChannelIn(provider="twilio", name="Main", phone_number="+14155238886",
                                                    account_sid=ACCOUNT, auth_token=TOKEN))
    if auto_reply is not None:
        channel = service.update(TENANT, channel.channel_id, ChannelPatch(auto_reply=AutoReplyConfig(**auto_reply)))
    return channel


def meta_channel(auto_reply: dict[str, Any] | None = None) -> Channel:
    service = ChannelService()
    channel = service.create(TENANT, MetaChannelIn(
        provider="meta", name="Meta", phone_number_id="106540352242922", business_account_id="1234",
        display_phone_number="+15550783881", access_token=META_TOKEN, app_secret="app-secret-0123"))
    if auto_reply is not None:
        channel = service.update(TENANT, channel.channel_id, ChannelPatch(auto_reply=AutoReplyConfig(**auto_reply)))
    return channel


def inbound(channel: Channel, *, text: str | None = "hello", type: str = "text", media: list[MediaRef] | None = None,
            provider_message_id: str | None = None) -> MessageModel:
    message = InboundMessage(
        provider=channel.provider.value,
        provider_message_id=provider_message_id or ("SM" + os.urandom(16).hex()),
        contact_phone=CONTACT, type=type, text=text, media=media or [], contact_name="Zoë",
    )
    message_id = MessageRepository().record_inbound(channel, message)
    assert message_id is not None
    conversation_id = ids.conversation_id(TENANT, channel.channel_id, CONTACT)
    (item,) = [m for m in MessageModel.query(MessageModel.partition(TENANT, conversation_id))
               if m.message_id == message_id]
    return item


def reload(item: MessageModel) -> MessageModel:
    return MessageModel.get(item.pk, item.sk, consistent_read=True)


def media_of(item: MessageModel) -> list[dict[str, Any]]:
    return [dict(m.as_dict() if hasattr(m, "as_dict") else m) for m in reload(item).media]


def outbound_messages(channel: Channel) -> list[MessageModel]:
    conversation_id = ids.conversation_id(TENANT, channel.channel_id, CONTACT)
    return [m for m in MessageModel.query(MessageModel.partition(TENANT, conversation_id))
            if m.direction == "outbound"]


def s3_object(key: str) -> dict[str, Any]:
    return boto3.client("s3").get_object(Bucket=get_settings().media_bucket, Key=key)  # type: ignore[no-any-return]


def upload_to_sandbox(stack: Stack, content: bytes, mime_type: str, **query: str) -> dict[str, Any]:
    import requests

    answer = requests.post(f"{stack.sandbox_url}/_sandbox/media", data=content, params=query,
                           headers={"Content-Type": mime_type}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- media
def test_twilio_media_basic_auth_then_redirect_without_credentials(
    stack: Stack, media_server: str, media_host: MediaHost
) -> None:
    channel = twilio_channel()
    item = inbound(channel, text=None, type="image", media=[
        MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0"),
        MediaRef(content_type="application/pdf", provider_url=f"{media_server}/api/ME1"),
    ])

    assert stack.process() == {"batchItemFailures": []}

    stored = media_of(item)
    for index, (content, content_type) in enumerate([(JPEG, "image/jpeg"), (PDF, "application/pdf")]):
        entry = stored[index]
        key = f"{TENANT}/{item.conversation_id}/{item.message_id}/{index}"
        assert entry["status"] == "stored" and entry["s3_key"] == key
        assert entry["size"] == len(content) and entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["content_type"] == content_type
        obj = s3_object(key)
        assert obj["Body"].read() == content and obj["ContentType"] == content_type
        assert obj["ContentDisposition"] == ("inline" if content_type == "image/jpeg" else "attachment")
    # credentials went to the API host only, never to the CDN host
    assert {(host, p.split("/")[1], auth) for host, p, auth in media_host.hits} == {
        ("127.0.0.1", "api", BASIC), ("localhost", "cdn", None)}


def test_meta_media_id_to_url_to_bearer_download(stack: Stack) -> None:
    channel = meta_channel()
    uploaded = upload_to_sandbox(stack, PNG, "image/png")
    webhook_sha = base64.b64encode(hashlib.sha256(PNG).digest()).decode()  # the webhook's own spelling
    item = inbound(channel, text=None, type="image", provider_message_id="wamid.media-1",
                   media=[MediaRef(content_type="image/png", provider_media_id=uploaded["id"], sha256=webhook_sha)])

    assert stack.process() == {"batchItemFailures": []}

    (entry,) = media_of(item)
    assert entry["status"] == "stored" and entry["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert s3_object(entry["s3_key"])["Body"].read() == PNG
    lookups = [r for r in stack.sandbox.requests() if r["path"].endswith(f"/{uploaded['id']}")]
    assert [r["path"] for r in lookups] == [f"/v25.0/{uploaded['id']}", f"/_sandbox/media/{uploaded['id']}"]
    assert all(r["headers"]["Authorization"] == f"Bearer {META_TOKEN}" for r in lookups)


def test_sha256_mismatch_fails_the_media_and_keeps_the_message(stack: Stack) -> None:
    channel = meta_channel()
    uploaded = upload_to_sandbox(stack, PNG, "image/png", sha256="0" * 64)
    item = inbound(channel, text="caption", type="image", provider_message_id="wamid.bad-sha",
                   media=[MediaRef(content_type="image/png", provider_media_id=uploaded["id"])])

    assert stack.process() == {"batchItemFailures": []}  # permanent: recorded, not retried

    (entry,) = media_of(item)
    assert entry["status"] == "failed" and "sha256" in entry["reason"]
    assert reload(item).text == "caption"
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=get_settings().media_bucket)


@pytest.mark.parametrize("provider", ["twilio", "meta"])
def test_host_off_the_allow_list_is_never_fetched(stack: Stack, provider: str) -> None:
    if provider == "meta":
        channel = meta_channel()
        uploaded = upload_to_sandbox(stack, PNG, "image/png", host="media.example.com")
        media = MediaRef(content_type="image/png", provider_media_id=uploaded["id"])
    else:
        channel = twilio_channel()
        media = MediaRef(content_type="image/png", provider_url="https://media.example.com/ME0")
    item = inbound(channel, text=None, type="image", media=[media])

    assert stack.process() == {"batchItemFailures": []}

    (entry,) = media_of(item)
    assert entry["status"] == "failed" and "allow-list" in entry["reason"]
    assert not [r for r in stack.sandbox.requests() if r["path"].startswith("/_sandbox/media/")]


def test_media_already_stored_is_not_fetched_again(stack: Stack, media_server: str, media_host: MediaHost) -> None:
    channel = twilio_channel()
    item = inbound(channel, text=None, type="image",
                   media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    records = stack.new_records()
    assert stack.invoke(records) == {"batchItemFailures": []}
    media_host.hits.clear()

    assert stack.invoke(records) == {"batchItemFailures": []}  # the same record again (a retry, a replay)

    assert media_host.hits == []
    assert media_of(item)[0]["status"] == "stored"


class _S3Fault:
    """Makes the shared S3 client refuse uploads: ``times`` failures (None: until removed)."""

    def __init__(self, times: int | None) -> None:
        self.times, self.failed = times, 0
        self.s3 = aws_client("s3")
        for operation in ("PutObject", "CreateMultipartUpload"):
            self.s3.meta.events.register(f"before-call.s3.{operation}", self)

    def __call__(self, **_: Any) -> None:
        if self.times is None or self.failed < self.times:
            self.failed += 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject")

    def remove(self) -> None:
        for operation in ("PutObject", "CreateMultipartUpload"):
            self.s3.meta.events.unregister(f"before-call.s3.{operation}", self)


def test_s3_failing_once_is_retried_by_the_stream_and_stored(stack: Stack, media_server: str) -> None:
    channel = twilio_channel()
    item = inbound(channel, text=None, type="image",
                   media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    fault = _S3Fault(times=1)
    calls: list[Any] = []

    def invoke(function_id: str, event: dict[str, Any]) -> Any:
        result = stack.runtime.invoke(function_id, event)
        calls.append(result)
        return result

    try:
        stack.poller(invoke).drain()
    finally:
        fault.remove()

    assert fault.failed == 1
    assert len(calls[0]["batchItemFailures"]) == 1 and calls[-1] == {"batchItemFailures": []}
    assert media_of(item)[0]["status"] == "stored"
    assert stack.dead_letters() == []


def test_s3_failing_for_good_dead_letters_then_replay_stores_without_a_second_reply(
    stack: Stack, media_server: str
) -> None:
    channel = twilio_channel({"mode": "on", "rules": [{"keywords": ["photo"], "reply": "Nice photo!"}]})
    item = inbound(channel, text="my photo", type="image",
                   media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    fault = _S3Fault(times=None)
    try:
        stack.poller().drain()
    finally:
        fault.remove()

    (dead,) = stack.dead_letters()
    assert dead["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert dead["DDBStreamBatchInfo"]["batchSize"] == 1
    assert media_of(item)[0]["status"] == "pending"  # retryable: never marked failed
    assert fault.failed == 4  # the first delivery and MaximumRetryAttempts (3) retries
    assert len(stack.sends()) == 1  # the auto-reply went out on the first delivery, never again

    report = replay(boto3.client("sqs"), boto3.client("dynamodbstreams"), stack.aws.ref("DeadLetterQueue"),
                    lambda _arn, event: stack.runtime.invoke(FUNCTION, event), lambda _arn: stack.patterns)

    assert report.ok and [b.status for b in report.batches] == ["replayed"], report.summary()
    assert media_of(item)[0]["status"] == "stored"
    assert s3_object(media_of(item)[0]["s3_key"])["Body"].read() == JPEG
    assert len(stack.sends()) == 1
    assert stack.dead_letters() == []  # deleted once replayed
    assert [m.text for m in outbound_messages(channel)] == ["Nice photo!"]


def test_replay_reports_a_batch_that_fails_again_and_keeps_it(stack: Stack, media_server: str) -> None:
    channel = twilio_channel()
    inbound(channel, text=None, type="image",
            media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    fault = _S3Fault(times=None)
    try:
        stack.poller().drain()
        report = replay(boto3.client("sqs"), boto3.client("dynamodbstreams"), stack.aws.ref("DeadLetterQueue"),
                        lambda _arn, event: stack.runtime.invoke(FUNCTION, event), lambda _arn: stack.patterns)
    finally:
        fault.remove()

    assert not report.ok and [b.status for b in report.batches] == ["failed"]
    assert len(stack.dead_letters()) == 1


# ---------------------------------------------------------------------------------------------- auto-reply
AUTO = {"rules": [{"keywords": ["price", "cost"], "reply": "Our prices: example.com/prices"},
                  {"keywords": ["hours"], "reply": "We open at 9."}],
        "fallback": "Thanks, we will get back to you.", "unsupported_notice": "We cannot read this kind of message."}


def test_keyword_rule_is_sent_through_the_provider_and_stored_as_auto(stack: Stack) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    item = inbound(channel, text="What is the PRICE of it?")

    assert stack.process() == {"batchItemFailures": []}

    (send,) = stack.sends()
    form = parse_qs(send["body"])
    assert send["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert form["Body"] == ["Our prices: example.com/prices"] and form["To"] == [f"whatsapp:{CONTACT}"]
    (reply,) = outbound_messages(channel)
    assert reply.sender == {"kind": "auto", "id": "rule:0"}
    assert reply.status == "sent" and reply.provider_message_id and reply.provider_message_id.startswith("SM")
    assert reply.text == "Our prices: example.com/prices" and reply.content["in_reply_to"] == item.message_id
    conversation = ConversationModel.get(*ConversationModel.key(TENANT, item.conversation_id))
    assert conversation.last_message_preview == reply.text and conversation.operator_lock_until is None


def test_meta_channel_replies_through_the_graph_api(stack: Stack) -> None:
    channel = meta_channel({"mode": "on", **AUTO})
    inbound(channel, text="opening hours?", provider_message_id="wamid.hours")

    assert stack.process() == {"batchItemFailures": []}

    (send,) = stack.sends()
    assert send["path"] == "/v25.0/106540352242922/messages"
    assert json.loads(send["body"])["text"]["body"] == "We open at 9."
    (reply,) = outbound_messages(channel)
    assert reply.sender == {"kind": "auto", "id": "rule:1"} and reply.provider_message_id.startswith("wamid.")


def test_fallback_and_unsupported_notice(stack: Stack) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    inbound(channel, text="good morning")
    inbound(channel, text=None, type="unsupported")

    assert stack.process() == {"batchItemFailures": []}

    assert sorted(parse_qs(s["body"])["Body"][0] for s in stack.sends()) == [
        "Thanks, we will get back to you.", "We cannot read this kind of message."]
    assert sorted(str(m.sender["id"]) for m in outbound_messages(channel)) == ["fallback", "unsupported_notice"]


def test_shadow_mode_stores_a_suggestion_and_sends_nothing(stack: Stack) -> None:
    channel = twilio_channel({"mode": "shadow", **AUTO})
    inbound(channel, text="price")

    assert stack.process() == {"batchItemFailures": []}

    assert stack.sends() == []
    (suggestion,) = outbound_messages(channel)
    assert suggestion.status == "suggested" and suggestion.sender == {"kind": "auto", "id": "rule:0"}
    assert suggestion.provider_message_id is None
    # and a suggestion is no status change: nothing more in the stream for the processor
    assert stack.new_records() == []


@pytest.mark.parametrize("case", ["operator lock", "bot_mode off", "channel off", "bot_mode shadow"])
def test_nothing_is_sent(stack: Stack, case: str) -> None:
    channel = twilio_channel({"mode": "off" if case == "channel off" else "on", **AUTO})
    first = inbound(channel, text="hi")  # creates the conversation
    stack.process()
    stack.sandbox._log.clear()
    for message in outbound_messages(channel):
        message.delete()
    key = ConversationModel.key(TENANT, first.conversation_id)
    if case == "operator lock":
        lock = ids.iso(ids.utcnow() + timedelta(minutes=30))
        ConversationModel(*key).update(actions=[ConversationModel.operator_lock_until.set(lock)])
    elif case == "bot_mode off":
        ConversationModel(*key).update(actions=[ConversationModel.bot_mode.set("off")])
    elif case == "bot_mode shadow":
        ConversationModel(*key).update(actions=[ConversationModel.bot_mode.set("shadow")])
    inbound(channel, text="price?")

    assert stack.process() == {"batchItemFailures": []}

    assert stack.sends() == []
    stored = outbound_messages(channel)
    assert [m.status for m in stored] == (["suggested"] if case == "bot_mode shadow" else [])


def test_bot_mode_on_replies_in_a_channel_that_is_off(stack: Stack) -> None:
    channel = twilio_channel({"mode": "off", **AUTO})
    first = inbound(channel, text="hi")
    stack.process()
    ConversationModel(*ConversationModel.key(TENANT, first.conversation_id)).update(
        actions=[ConversationModel.bot_mode.set("on")])
    inbound(channel, text="hours")

    stack.process()

    assert [parse_qs(s["body"])["Body"] for s in stack.sends()] == [["We open at 9."]]


def test_ten_concurrent_deliveries_of_one_message_send_one_reply(stack: Stack) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    inbound(channel, text="price")
    records = stack.new_records()

    results = at_once(lambda: stack.invoke(records))

    assert results == [{"batchItemFailures": []}] * 10
    assert len(stack.sends()) == 1
    assert len(outbound_messages(channel)) == 1


def test_a_duplicate_webhook_delivery_does_not_reach_the_processor_twice(stack: Stack) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    message = InboundMessage(provider="twilio", provider_message_id="SM" + "d" * 32, contact_phone=CONTACT,
                             type="text", text="price")
    assert MessageRepository().record_inbound(channel, message) is not None
    assert MessageRepository().record_inbound(channel, message) is None

    assert len(stack.new_records()) == 1


def test_transient_provider_refusal_retries_the_same_stored_reply(stack: Stack) -> None:
    """A 429 proves the reply was not accepted: the record fails, and its retry sends the same stored message."""
    channel = twilio_channel({"mode": "on", **AUTO})
    inbound(channel, text="price")
    records = stack.new_records()
    from local import sandbox as sandbox_module

    original = sandbox_module.twilio_send_message.handler
    refusals = [1]

    def flaky(sandbox: ProviderSandbox, request: Any) -> Any:
        if refusals:
            refusals.pop()
            return sandbox_module.twilio_error(429, 20429, "Too Many Requests")
        return original(sandbox, request)

    stack.sandbox.routes = [sandbox_module.SandboxRoute(r.method, r.pattern, flaky)
                            if r.handler is original else r for r in stack.sandbox.routes]

    first = stack.invoke(records)
    assert len(first["batchItemFailures"]) == 1
    (queued,) = outbound_messages(channel)
    assert queued.status == "queued"

    # the retry, delivered 10 times at once: one of them takes the claim over and resends
    results = at_once(lambda: stack.invoke(records))
    assert results == [{"batchItemFailures": []}] * 10
    assert stack.invoke(records) == {"batchItemFailures": []}  # and a later delivery changes nothing

    assert len(stack.sends()) == 2  # the refused one and the accepted one
    (sent,) = outbound_messages(channel)
    assert sent.message_id == queued.message_id and sent.status == "sent"
    claim = IdempotencyModel.get(f"TENANT#{TENANT}#autoreply#{queued.content['in_reply_to']}")
    assert claim.state == "done"


def test_permanent_provider_refusal_stores_the_reply_failed_and_never_resends(stack: Stack) -> None:
    channel = twilio_channel({"mode": "on", "rules": [{"keywords": ["x"], "reply": "sandbox-error:63016 no"}]})
    inbound(channel, text="x")
    records = stack.new_records()

    assert stack.invoke(records) == {"batchItemFailures": []}
    assert stack.invoke(records) == {"batchItemFailures": []}

    assert len(stack.sends()) == 1
    (failed,) = outbound_messages(channel)
    assert failed.status == "failed" and failed.error["provider_code"] == "63016"


# ---------------------------------------------------------------------------------------------- events
@pytest.fixture
def bus_queue(stack: Stack) -> Callable[[], list[dict[str, Any]]]:
    """An EventBridge rule on the gateway's bus → an SQS queue, as a subscriber would set it up."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    bus = stack.aws.ref("EventBus")
    queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-messages", EventBusName=bus, EventPattern=json.dumps({"source": ["whatsapp.gateway"]}))
    events.put_targets(Rule="all-messages", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    def received() -> list[dict[str, Any]]:
        out = []
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            if not answer.get("Messages"):
                return out
            for message in answer["Messages"]:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return received


def test_events_reach_the_bus_with_the_documented_shape(
    stack: Stack, bus_queue: Callable[[], list[dict[str, Any]]], media_server: str
) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    item = inbound(channel, text="price", type="image",
                   media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    stack.process()  # message.received + message.sent (the auto-reply)
    stack.process()  # the reply's queued → sent update: message.status_changed

    events = {e["detail-type"]: e for e in bus_queue()}
    assert set(events) == {"message.received", "message.sent", "message.status_changed"}
    assert all(e["source"] == "whatsapp.gateway" for e in events.values())

    received = events["message.received"]["detail"]
    assert {k: received[k] for k in ("tenant_id", "channel_id", "conversation_id", "provider", "contact_phone")} == {
        "tenant_id": TENANT, "channel_id": channel.channel_id, "conversation_id": item.conversation_id,
        "provider": "twilio", "contact_phone": CONTACT}
    message = received["message"]
    assert message["id"] == item.message_id and message["direction"] == "inbound" and message["text"] == "price"
    (media,) = message["media"]
    assert media["status"] == "stored" and media["url"] is None
    assert media["s3_bucket"] == get_settings().media_bucket and media["s3_key"].endswith(f"/{item.message_id}/0")
    assert media["sha256"] == hashlib.sha256(JPEG).hexdigest() and media["content_type"] == "image/jpeg"

    sent = events["message.sent"]["detail"]
    assert sent["message"]["sender"] == {"kind": "auto", "id": "rule:0"} and sent["message"]["status"] == "sent"
    assert sent["contact_phone"] == CONTACT

    changed = events["message.status_changed"]["detail"]
    assert (changed["previous_status"], changed["status"]) == ("queued", "sent")
    assert changed["message"]["id"] == sent["message"]["id"]


def test_provider_status_reports_become_status_changed_events(
    stack: Stack, bus_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    channel = twilio_channel({"mode": "on", **AUTO})
    inbound(channel, text="price")
    stack.process()
    stack.process()
    bus_queue()
    (reply,) = outbound_messages(channel)
    repo = MessageRepository()
    for status in ("delivered", "delivered", "read", "delivered"):  # a duplicate and a late one: no change
        update = StatusUpdate("twilio", str(reply.provider_message_id), status, status, ids.iso(ids.utcnow()))
        repo.apply_status(channel, update, route_key=route_key_twilio(channel.phone_number))

    stack.process()

    changes = [(e["detail"]["previous_status"], e["detail"]["status"]) for e in bus_queue()]
    assert changes == [("sent", "delivered"), ("delivered", "read")]


def test_event_not_accepted_fails_the_record(stack: Stack) -> None:
    channel = twilio_channel()
    inbound(channel, text="hello")
    events = aws_client("events")

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalException", "Message": "injected"}}, "PutEvents")

    events.meta.events.register("before-call.events.PutEvents", refuse)
    try:
        result = stack.process()
    finally:
        events.meta.events.unregister("before-call.events.PutEvents", refuse)
    assert len(result["batchItemFailures"]) == 1


def test_filters_let_through_only_what_the_processor_handles(stack: Stack, media_server: str) -> None:
    channel = twilio_channel({"mode": "shadow", **AUTO})
    item = inbound(channel, text="price", type="image",
                   media=[MediaRef(content_type="image/jpeg", provider_url=f"{media_server}/api/ME0")])
    records = stack.new_records()
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records] == [("INSERT", item.sk)]

    assert stack.invoke(records) == {"batchItemFailures": []}

    # the media update (inbound MODIFY), the suggestion (outbound INSERT), the claim item: all filtered out
    assert media_of(item)[0]["status"] == "stored" and len(outbound_messages(channel)) == 1
    assert stack.new_records() == []
