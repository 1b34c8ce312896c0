"""``python -m local.replay`` (``make replay``): re-drive stream batches that were dead-lettered.

When a stream batch still fails after ``MaximumRetryAttempts``, Lambda (and the local poller) sends the batch's
*metadata* to the event source's ``OnFailure`` queue: ``DDBStreamBatchInfo{shardId, startSequenceNumber,
endSequenceNumber, streamArn}`` and the function's ARN. The records themselves stay in the stream for 24 hours.
Once the fault is gone, this command, for every message in the queue:

1. reads the records back from the stream (``AT_SEQUENCE_NUMBER`` start … end of the range);
2. keeps those the event source's ``FilterCriteria`` accept (the ones the function was given);
3. invokes the function with them, shaped as Lambda shapes them (the inbound processor re-reads every message
   by key, so it works from what is stored now, and its steps are idempotent: stored media are skipped, an
   auto-reply that was sent is never sent again);
4. deletes the queue message when every record succeeded; otherwise leaves it in the queue (visible again when
   the run ends) and reports it.

A batch whose records have left the stream (older than 24 h) cannot be read back and is reported, never
deleted. Modes: against the running ``make dev`` (default: resources from ``.local/state.json``, handler run in
this process like ``make invoke``), or ``--aws`` against a deployed stack (``--stack`` name, or
``--queue-url``; the function is invoked through the Lambda API under the caller's credentials).
Exit status: 0 when everything replayed (or nothing was there), 1 when a batch failed again or could not be
read, 2 for usage errors (no running stack...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.filters import matches_any
from local.poller import _lambda_record
from local.template import StreamSourceSpec, Template, load_template

Invoke = Callable[[str, dict[str, Any]], Any]  # (function ARN, event) → the function's response
UNREADABLE_CODES = {"TrimmedDataAccessException", "ExpiredIteratorException", "ResourceNotFoundException"}
MAX_EMPTY_PAGES = 5


@dataclass
class BatchOutcome:
    message_id: str
    shard_id: str | None
    start: str | None
    end: str | None
    records: int = 0
    status: str = "replayed"  # replayed | failed | unreadable | not_a_stream_batch | dry_run
    detail: str | None = None


@dataclass
class ReplayReport:
    batches: list[BatchOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(b.status in ("replayed", "dry_run") for b in self.batches)

    def summary(self) -> str:
        if not self.batches:
            return "dead-letter queue is empty: nothing to replay"
        lines = [
            f"{b.status:<18} shard {b.shard_id} seq {b.start}..{b.end}: {b.records} record(s)"
            + (f" ({b.detail})" if b.detail else "")
            for b in self.batches
        ]
        replayed = sum(b.status == "replayed" for b in self.batches)
        return "\n".join([*lines, f"{replayed}/{len(self.batches)} batch(es) replayed"])


# ---------------------------------------------------------------------------------------------- core
def read_range(streams: Any, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of a dead-lettered batch, from the stream, in Lambda's shape. Raises LookupError when the
    range is no longer readable (trimmed: older than the stream's 24 h retention)."""
    from botocore.exceptions import ClientError

    stream_arn, shard_id = info["streamArn"], info["shardId"]
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=str(start),
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty_pages = 0
        while iterator and empty_pages < MAX_EMPTY_PAGES:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            iterator = page.get("NextShardIterator")
            got = page.get("Records") or []
            empty_pages = 0 if got else empty_pages + 1
            for record in got:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                if sequence > end:
                    return records
                if sequence >= start:
                    records.append(_lambda_record(record, stream_arn))
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
                return records
        return records
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in UNREADABLE_CODES:
            raise LookupError(f"stream range no longer readable ({code})") from error
        raise


def replay(
    sqs: Any,
    streams: Any,
    queue_url: str,
    invoke: Invoke,
    filters_for: Callable[[str], Sequence[dict[str, Any]]],
    *,
    dry_run: bool = False,
    max_batches: int = 1000,
) -> ReplayReport:
    """Re-drive every dead-lettered batch in ``queue_url`` once (see the module docstring)."""
    report = ReplayReport()
    seen: set[str] = set()
    kept: list[str] = []  # receipt handles of messages left in the queue
    while len(report.batches) < max_batches:
        # Received messages stay invisible for the rest of the run, so each is handled once.
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=900
        )
        messages = [m for m in answer.get("Messages") or [] if m["MessageId"] not in seen]
        if not messages:
            break
        for message in messages:
            seen.add(message["MessageId"])
            outcome = _replay_one(message, streams, invoke, filters_for, dry_run=dry_run)
            report.batches.append(outcome)
            if outcome.status == "replayed":
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                kept.append(message["ReceiptHandle"])
    for handle in kept:  # visible again at once: the next run (once the fault is fixed) sees them
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _replay_one(
    message: Mapping[str, Any],
    streams: Any,
    invoke: Invoke,
    filters_for: Callable[[str], Sequence[dict[str, Any]]],
    *,
    dry_run: bool,
) -> BatchOutcome:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    info = body.get("DDBStreamBatchInfo") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return BatchOutcome(message["MessageId"], None, None, None, status="not_a_stream_batch")
    outcome = BatchOutcome(
        message["MessageId"], info.get("shardId"), info.get("startSequenceNumber"), info.get("endSequenceNumber")
    )
    function_arn = str((body.get("requestContext") or {}).get("functionArn") or "")
    try:
        records = read_range(streams, info)
    except LookupError as error:
        outcome.status, outcome.detail = "unreadable", str(error)
        return outcome
    patterns = filters_for(function_arn)
    wanted = [r for r in records if matches_any(patterns, r)] if patterns else records
    outcome.records = len(wanted)
    if dry_run:
        outcome.status = "dry_run"
        return outcome
    if not wanted:
        return outcome
    try:
        response = invoke(function_arn, {"Records": wanted})
    except Exception as error:
        outcome.status, outcome.detail = "failed", f"{type(error).__name__}: {error}"
        return outcome
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures:
        outcome.status = "failed"
        outcome.detail = f"{len(failures)} record(s) failed again"
    return outcome


# ---------------------------------------------------------------------------------------------- modes
def _sources_by_queue(template: Template, queue_id: str | None) -> list[StreamSourceSpec]:
    return [s for s in template.stream_sources() if queue_id is None or s.on_failure_queue_id == queue_id]


def replay_local(state: Mapping[str, Any], *, dry_run: bool = False, queue_id: str = "DeadLetterQueue") -> ReplayReport:
    """Against the running ``make dev``: handlers run in this process, against its moto."""
    import boto3

    from local.dev import aws_env
    from local.provision import Resources
    from local.runtime import FunctionRuntime

    template = load_template(state["template"])
    resources = Resources.from_dict(template, state["resources"])
    os.environ.update(aws_env(state["aws_endpoint"], state["region"]))
    os.environ.update(resources.globals_env())
    sources = _sources_by_queue(template, queue_id)
    by_arn = {resources.get_att(s.function_id, "Arn"): s for s in sources}
    runtime = FunctionRuntime(resources)

    def source_for(function_arn: str) -> StreamSourceSpec | None:
        return by_arn.get(function_arn) or (sources[0] if len(sources) == 1 else None)

    def invoke(function_arn: str, event: dict[str, Any]) -> Any:
        source = source_for(function_arn)
        if source is None:
            raise LookupError(f"no stream function of the template dead-letters to {queue_id} as {function_arn}")
        return runtime.invoke(source.function_id, event)

    def filters_for(function_arn: str) -> Sequence[dict[str, Any]]:
        source = source_for(function_arn)
        return source.filter_patterns if source else ()

    session = boto3.session.Session()
    region = state["region"]
    return replay(
        session.client("sqs", region_name=region),
        session.client("dynamodbstreams", region_name=region),
        resources.ref(queue_id),
        invoke,
        filters_for,
        dry_run=dry_run,
    )


def replay_aws(
    *, stack: str | None, queue_url: str | None, region: str | None, template_path: str, dry_run: bool = False
) -> ReplayReport:
    """Against a deployed stack, with the caller's AWS credentials."""
    import boto3

    session = boto3.session.Session(region_name=region)
    if queue_url is None:
        if stack is None:
            raise ValueError("--aws needs --stack or --queue-url")
        outputs = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        queue_url = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "DeadLetterQueueUrl"), None)
        if queue_url is None:
            raise ValueError(f"stack {stack} has no DeadLetterQueueUrl output")
    sources = _sources_by_queue(load_template(template_path), "DeadLetterQueue")
    patterns = sources[0].filter_patterns if len(sources) == 1 else ()
    lambda_client = session.client("lambda")

    def invoke(function_arn: str, event: dict[str, Any]) -> Any:
        answer = lambda_client.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise RuntimeError(f"function error: {payload[:500]!r}")
        return json.loads(payload or b"null")

    return replay(
        session.client("sqs"),
        session.client("dynamodbstreams"),
        queue_url,
        invoke,
        lambda _arn: patterns,
        dry_run=dry_run,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.replay", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--aws", action="store_true", help="replay against a deployed stack instead of make dev")
    parser.add_argument("--stack", help="--aws: CloudFormation stack name (its DeadLetterQueueUrl output)")
    parser.add_argument("--queue-url", help="--aws: the dead-letter queue URL")
    parser.add_argument("--region", help="--aws: AWS region (default: the caller's configuration)")
    parser.add_argument("--dry-run", action="store_true", help="read and report the batches, invoke nothing")
    args = parser.parse_args(argv)
    try:
        if args.aws:
            from local import TEMPLATE_PATH

            report = replay_aws(stack=args.stack, queue_url=args.queue_url, region=args.region,
                                template_path=str(TEMPLATE_PATH), dry_run=args.dry_run)
        else:
            from local.state import read_state

            report = replay_local(read_state(), dry_run=args.dry_run)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

