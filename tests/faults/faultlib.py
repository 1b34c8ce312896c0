"""The fault-injection helper of the fault matrix (docs/RELIABILITY.md), plus the table checks its tests share.

``FaultInjector`` makes chosen AWS operations fail, for every botocore client in the process (boto3's clients
from ``gateway.aws`` and PynamoDB's own connection client alike), at one of two layers:

- ``layer="call"`` (default): ``BaseClient._make_api_call`` raises the service's own modeled ``ClientError``
  before anything is sent, i.e. what the application sees once the SDK has used up its retries. This is the
  fault an application must have an answer for.
- ``layer="wire"``: the HTTP answer itself is an error (moto's request stub answers it), so botocore's retry
  handler sees it and retries as it would against AWS (standard mode; backoff sleeps patched to 0). One
  throttle at this layer is invisible to the application when the SDK's retries absorb it.

A fault matches a service + operation and, optionally, a predicate over the request parameters (``on_table``,
``mentions``); ``skip`` lets the first matching calls through and ``times`` bounds how many fail (None: every
one until the injector is closed). Every call seen is recorded, so tests can count requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
import botocore.client
from botocore.exceptions import ClientError

# Error codes and the HTTP status AWS answers them with.
THROTTLED = "ProvisionedThroughputExceededException"
THROTTLING = "ThrottlingException"
INTERNAL = "InternalServerError"
STATUS = {
    THROTTLED: 400,
    THROTTLING: 400,
    INTERNAL: 500,
    "KMSInternalException": 500,
    "DependencyTimeoutException": 503,
    "InternalError": 500,  # S3
    "SlowDown": 503,  # S3
    "InternalException": 500,  # EventBridge
}

Predicate = Callable[[Mapping[str, Any]], bool]


def on_table(name: str) -> Predicate:
    """Requests that touch table ``name`` (directly, or inside TransactWriteItems/TransactGetItems)."""

    def match(params: Mapping[str, Any]) -> bool:
        if params.get("TableName") == name:
            return True
        for entry in params.get("TransactItems") or []:
            if any(isinstance(op, dict) and op.get("TableName") == name for op in entry.values()):
                return True
        return False

    return match


def mentions(*texts: str) -> Predicate:
    """Requests whose parameters mention every one of ``texts`` (key prefixes, attribute values...)."""

    def match(params: Mapping[str, Any]) -> bool:
        dumped = json.dumps(params, default=str)
        return all(text in dumped for text in texts)

    return match


def both(*predicates: Predicate) -> Predicate:
    return lambda params: all(p(params) for p in predicates)


@dataclass
class Fault:
    service: str  # botocore service name: dynamodb, kms, s3, events
    operation: str  # PutItem, TransactWriteItems, Decrypt, PutObject...
    code: str = THROTTLED
    times: int | None = None  # None: fail every matching call
    match: Predicate | None = None
    skip: int = 0
    layer: Literal["call", "wire"] = "call"
    seen: int = 0
    injected: int = 0

    def take(self, service: str, operation: str, params: Mapping[str, Any], layer: str) -> bool:
        """Whether this call fails (counts it)."""
        if layer != self.layer or service != self.service or operation != self.operation:
            return False
        if self.match is not None and not self.match(params):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.injected >= self.times):
            return False
        self.injected += 1
        return True

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 500)

    def error_response(self) -> dict[str, Any]:
        return {
            "Error": {"Code": self.code, "Message": f"injected fault ({self.code})"},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "HTTPHeaders": {}, "RetryAttempts": 0},
        }


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (service, operation) of every API call
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        service: str,
        operation: str,
        code: str = THROTTLED,
        *,
        times: int | None = None,
        match: Predicate | None = None,
        skip: int = 0,
        layer: Literal["call", "wire"] = "call",
    ) -> Fault:
        fault = Fault(service, operation, code, times, match, skip, layer)
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """Remove every fault (the outage is over); calls keep being recorded."""
        with self._lock:
            self.faults.clear()

    def count(self, service: str, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for s, o in self.calls if s == service and (operation is None or o == operation))

    def _pick(self, service: str, operation: str, params: Mapping[str, Any], layer: str) -> Fault | None:
        with self._lock:
            if layer == "call":
                self.calls.append((service, operation))
            for fault in self.faults:
                if fault.take(service, operation, params, layer):
                    return fault
        return None

    @contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        from botocore.retries.standard import ExponentialBackoff
        from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

        injector = self
        make_api_call = botocore.client.BaseClient._make_api_call
        stub = BotocoreStubber.__call__
        delay_amount = ExponentialBackoff.delay_amount

        def failing_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            fault = injector._pick(service, operation_name, api_params, "call")
            if fault is not None:
                error_class = client.exceptions.from_code(fault.code)
                raise error_class(fault.error_response(), operation_name)
            return make_api_call(client, operation_name, api_params)

        def failing_wire(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            # event_name: before-send.<service id>.<Operation>
            _, service_id, operation = event_name.split(".", 2)
            service = {"dynamodb": "dynamodb", "kms": "kms", "s3": "s3", "eventbridge": "events"}.get(
                service_id, service_id
            )
            params = _wire_params(request)
            fault = injector._pick(service, operation, params, "wire")
            if fault is None:
                return stub(stubber, event_name, request, **kwargs)
            from botocore.awsrequest import AWSResponse

            if service == "s3":
                body = f"<Error><Code>{fault.code}</Code><Message>injected</Message></Error>"
                headers = {"Content-Type": "application/xml"}
            else:
                body = json.dumps({"__type": fault.code, "message": "injected"})
                headers = {"Content-Type": "application/x-amz-json-1.0"}
            return AWSResponse(request.url, fault.status, headers, MockRawResponse(body))

        botocore.client.BaseClient._make_api_call = failing_call  # type: ignore[method-assign]
        BotocoreStubber.__call__ = failing_wire  # type: ignore[method-assign]
        ExponentialBackoff.delay_amount = lambda self, context: 0.0  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
            BotocoreStubber.__call__ = stub  # type: ignore[method-assign]
            ExponentialBackoff.delay_amount = delay_amount  # type: ignore[method-assign]


def _wire_params(request: Any) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes | bytearray):
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def is_client_error(error: BaseException, code: str) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == code


# ---------------------------------------------------------------------------------------------- table checks
def scan(table: str) -> list[dict[str, Any]]:
    """Every item of a table, as plain Python values (DynamoDB's typed JSON decoded)."""
    from boto3.dynamodb.types import TypeDeserializer

    client = boto3.client("dynamodb", region_name="us-east-1")
    deserialize = TypeDeserializer().deserialize
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items += [{k: deserialize(v) for k, v in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# PynamoDB JSONAttributes of a message, stored as JSON strings.
_JSON_ATTRIBUTES = ("sender", "error", "content", "context", "location", "status_details", "pending_error",
                    "pending_details")


def _decode_json(item: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if k in _JSON_ATTRIBUTES and isinstance(v, str) else v for k, v in item.items()}


@dataclass(frozen=True)
class Tables:
    """A snapshot of the four tables, with the invariants that a half-finished write would break."""

    channels: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    idempotency: list[dict[str, Any]]

    @classmethod
    def read(cls, names: Mapping[str, str]) -> Tables:
        channels, conversations, messages, idempotency = (
            scan(names[k]) for k in ("channels", "conversations", "messages", "idempotency")
        )
        return cls(channels, conversations, [_decode_json(m) for m in messages], idempotency)

    # ------------------------------------------------------------------ views
    def message_items(self, direction: str | None = None) -> list[dict[str, Any]]:
        return [
            m for m in self.messages
            if m.get("item_type") == "message" and (direction is None or m.get("direction") == direction)
        ]

    def claims(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["sk"] == "PMSG"]

    def conversation_items(self) -> list[dict[str, Any]]:
        return [c for c in self.conversations if str(c["sk"]).startswith("CONV#")]

    def contacts(self) -> list[dict[str, Any]]:
        return [c for c in self.conversations if str(c["sk"]).startswith("CONTACT#")]

    def routes(self) -> list[dict[str, Any]]:
        return [c for c in self.channels if str(c["pk"]).startswith("ROUTE#")]

    def channel_items(self) -> list[dict[str, Any]]:
        return [c for c in self.channels if str(c["sk"]).startswith("CHANNEL#")]

    def provider_ids(self, direction: str = "inbound") -> list[str]:
        return sorted(str(m.get("provider_message_id")) for m in self.message_items(direction))

    # ------------------------------------------------------------------ invariants
    def assert_consistent(self, *, unread_is_inbound_count: bool = True) -> None:
        """No half-written inbound message: each has its claim (pointing at it), its conversation (whose activity
        covers it) and its contact; each claim that points somewhere points at a stored message; each
        conversation's unread count is exactly its inbound messages (nothing applied twice or half); route claims
        point at active channels; no outbound message is left ``queued`` (sent but unrecorded, or never sent)."""
        by_key = {(m["pk"], m["sk"]): m for m in self.message_items()}
        conversations = {(c["pk"], c["sk"]): c for c in self.conversation_items()}
        contacts = {(c["pk"], c["sk"]) for c in self.contacts()}
        claims = {m["pk"]: m for m in self.claims()}
        inbound_per_conversation: dict[tuple[str, str], int] = {}
        for message in self.message_items():
            tenant, conversation_id = message["tenant_id"], message["conversation_id"]
            conversation_key = (f"TENANT#{tenant}", f"CONV#{conversation_id}")
            conversation = conversations.get(conversation_key)
            assert conversation is not None, f"message {message['message_id']} without its conversation"
            if message["direction"] == "inbound":
                inbound_per_conversation[conversation_key] = inbound_per_conversation.get(conversation_key, 0) + 1
                claim_pk = f"TENANT#{tenant}#PMSG#{message['provider']}#{message['provider_message_id']}"
                claim = claims.get(claim_pk)
                assert claim is not None, f"inbound message {message['message_id']} without its dedupe claim"
                assert (claim.get("message_pk"), claim.get("message_sk")) == (message["pk"], message["sk"])
                assert (f"TENANT#{tenant}", f"CONTACT#{message['sender']['id']}") in contacts
                assert str(conversation.get("last_inbound_at") or "") >= str(message["created_at"]), (
                    f"conversation {conversation_id} does not show inbound message {message['message_id']}"
                )
            else:
                assert message["status"] != "queued", f"outbound {message['message_id']} left queued: {message}"
        for claim in claims.values():
            if claim.get("message_pk"):
                assert (claim["message_pk"], claim["message_sk"]) in by_key, f"claim {claim['pk']} points nowhere"
        if unread_is_inbound_count:
            for key, conversation in conversations.items():
                assert int(conversation.get("unread_count") or 0) == inbound_per_conversation.get(key, 0), (
                    f"conversation {key} unread_count {conversation.get('unread_count')} != "
                    f"{inbound_per_conversation.get(key, 0)} inbound messages"
                )
        channels = {(c["tenant_id"], c["channel_id"]): c for c in self.channel_items()}
        for route in self.routes():
            channel = channels.get((route["tenant_id"], route["channel_id"]))
            assert channel is not None and channel["status"] == "active", f"route {route['pk']} dangles"
