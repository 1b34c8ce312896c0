"""A DynamoDB Streams event source mapping, locally: every ``Type: DynamoDB`` event of the template.

Per shard, in order: read records, drop those the FilterCriteria reject, invoke the function with batches of
``BatchSize``, and only move on when a batch succeeded. Failures are retried like Lambda does:
``ReportBatchItemFailures`` retries from the first failed sequence number, ``BisectBatchOnFunctionError`` splits a
failing batch in two, and once ``MaximumRetryAttempts`` is used up the batch's *metadata* goes to the
``DestinationConfig.OnFailure`` queue (the records stay in the stream, as in AWS).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.filters import matches_any
from local.provision import Resources
from local.runtime import acting_as
from local.template import StreamSourceSpec

log = logging.getLogger("local.poller")

Invoke = Callable[[str, dict[str, Any]], Any]

# Lambda retries a failing stream batch until the record expires (MaximumRetryAttempts -1, the default).
# Locally that would wedge the shard forever, so an unset/-1 value means this many retries.
LOCAL_DEFAULT_MAX_RETRIES = 2


@dataclass
class _Batch:
    records: list[dict[str, Any]]
    attempts: int = 0  # invocations of these records that failed so far


@dataclass
class _Source:
    spec: StreamSourceSpec
    stream_arn: str
    function_arn: str
    queue_url: str | None
    iterators: dict[str, str | None] = field(default_factory=dict)  # shard id → next iterator (None: closed)


class StreamPoller:
    def __init__(
        self,
        resources: Resources,
        invoke: Invoke,
        client_factory: Callable[[str], Any],
        *,
        enabled_functions: set[str] | None = None,
        poll_interval: float = 0.25,
        retry_delay: float = 0.2,
        default_max_retries: int = LOCAL_DEFAULT_MAX_RETRIES,
    ) -> None:
        self._invoke = invoke
        self._resources = resources
        self._streams = client_factory("dynamodbstreams")
        self._sqs = client_factory("sqs")
        self._region = resources.region
        self._poll_interval = poll_interval
        self._retry_delay = retry_delay
        self._default_max_retries = default_max_retries
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sources = [
            self._source(resources, spec)
            for spec in resources.template.stream_sources()
            if spec.enabled and (enabled_functions is None or spec.function_id in enabled_functions)
        ]

    @staticmethod
    def _source(resources: Resources, spec: StreamSourceSpec) -> _Source:
        return _Source(
            spec=spec,
            stream_arn=resources.get_att(spec.table_id, "StreamArn"),
            function_arn=resources.get_att(spec.function_id, "Arn"),
            queue_url=resources.ref(spec.on_failure_queue_id) if spec.on_failure_queue_id else None,
        )

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if not self.sources:
            return
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.poll_once()
            except Exception:  # keep polling: a transient moto hiccup must not end the local stack's outbox
                log.exception("stream poll failed")
                delivered = 0
            if not delivered:
                self._stop.wait(self._poll_interval)

    # ------------------------------------------------------------------------------------------ polling
    def poll_once(self) -> int:
        """Read every shard of every source once and process what was there; returns records read."""
        return sum(self._poll_source(source) for source in self.sources)

    def drain(self, max_rounds: int = 50) -> int:
        """Poll until the streams are empty (tests: 'process everything written so far')."""
        total = 0
        for _ in range(max_rounds):
            read = self.poll_once()
            total += read
            if not read:
                break
        return total

    def _poll_source(self, source: _Source) -> int:
        self._discover_shards(source)
        read = 0
        for shard_id, iterator in list(source.iterators.items()):
            if iterator is None:
                continue
            response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            source.iterators[shard_id] = response.get("NextShardIterator")
            records = [_lambda_record(r, source.stream_arn) for r in response.get("Records", [])]
            read += len(records)
            wanted = [r for r in records if matches_any(source.spec.filter_patterns, r)]
            for start in range(0, len(wanted), source.spec.batch_size):
                self._process(source, shard_id, wanted[start : start + source.spec.batch_size])
        return read

    def _discover_shards(self, source: _Source) -> None:
        description = self._streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in source.iterators:
                # Always from the trim horizon: the local tables are created empty just before polling starts,
                # so this loses nothing that LATEST would have delivered, and never races the first writes.
                source.iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=source.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]

    # ------------------------------------------------------------------------------------------ delivery
    def _process(self, source: _Source, shard_id: str, records: list[dict[str, Any]]) -> None:
        spec = source.spec
        max_retries = self._default_max_retries if spec.maximum_retry_attempts is None else spec.maximum_retry_attempts
        pending = deque([_Batch(records)])
        while pending:
            batch = pending.popleft()
            failed_from = self._deliver(spec, batch.records)
            if failed_from is None:
                continue
            retry = _Batch(batch.records[failed_from:], batch.attempts + 1)
            if retry.attempts > max_retries:
                self._send_to_failure_destination(source, shard_id, retry)
                continue
            if self._retry_delay:
                time.sleep(self._retry_delay)
            if spec.bisect_on_error and failed_from == 0 and len(retry.records) > 1:
                half = len(retry.records) // 2
                # Splitting narrows the search for the poison record; it does not spend the halves' retries.
                pending.extendleft([_Batch(retry.records[half:]), _Batch(retry.records[:half])])
            else:
                pending.appendleft(retry)

    def _deliver(self, spec: StreamSourceSpec, records: list[dict[str, Any]]) -> int | None:
        """Invoke once; ``None`` when every record succeeded, else the index to retry from."""
        try:
            result = self._invoke(spec.function_id, {"Records": records})
        except Exception:
            log.exception("%s failed on a batch of %d stream records", spec.function_id, len(records))
            return 0
        if not spec.report_batch_item_failures:
            return None
        return _first_failure(result, records, spec.function_id)

    def _send_to_failure_destination(self, source: _Source, shard_id: str, batch: _Batch) -> None:
        records = batch.records
        log.error(
            "%s: giving up on %d stream record(s) from %s after %d attempts",
            source.spec.function_id,
            len(records),
            records[0]["dynamodb"]["SequenceNumber"],
            batch.attempts,
        )
        if source.queue_url is None:
            return
        message = on_failure_message(source.function_arn, source.stream_arn, shard_id, records, batch.attempts)
        # Lambda sends it with the function's execution role (which must allow sqs:SendMessage on the queue).
        with acting_as(source.spec.function_id, self._resources):
            self._sqs.send_message(QueueUrl=source.queue_url, MessageBody=json.dumps(message))


def _first_failure(result: Any, records: list[dict[str, Any]], function_id: str) -> int | None:
    # Lambda: a null/empty response or an empty list is success; anything unusable fails the whole batch.
    if result is None:
        return None
    failures = result.get("batchItemFailures") if isinstance(result, dict) else "invalid"
    if not failures:
        return None
    if not isinstance(failures, list):
        log.error("%s returned an invalid batch response %r: retrying the whole batch", function_id, result)
        return 0
    positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in positions:
            log.error("%s returned an invalid itemIdentifier %r: retrying the whole batch", function_id, identifier)
            return 0
        indexes.append(positions[identifier])
    return min(indexes)


def on_failure_message(
    function_arn: str, stream_arn: str, shard_id: str, records: list[dict[str, Any]], attempts: int
) -> dict[str, Any]:
    """The invocation record Lambda sends to a stream's OnFailure destination (metadata only, no records)."""
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime", time.time())),
            "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime", time.time())),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------- record shape
def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 parsed it) in the shape Lambda hands to the function."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream:
            stream[image] = _wire_attributes(stream[image])
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


def _wire_attributes(value: Any) -> Any:
    """boto3 hands binary attributes over as bytes; the Lambda event carries them base64-encoded."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _wire_attributes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_attributes(v) for v in value]
    return value
