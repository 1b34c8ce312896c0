"""The DynamoDB stream poller against moto, with a test template holding a table, a DLQ and a stream function."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.poller import StreamPoller
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.template import Template
from local.testing import provisioned_moto

STREAM_TEMPLATE = """
Resources:
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Dlq:
    Type: AWS::SQS::Queue
  Processor:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: processor/
      Handler: app.handler
      Environment: {Variables: {CALLS_FILE: "%(calls)s"}}
      Events:
        Messages:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Items.StreamArn
            StartingPosition: LATEST
            BatchSize: %(batch_size)s
            BisectBatchOnFunctionError: %(bisect)s
            MaximumRetryAttempts: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["message"]}}}}'
            DestinationConfig:
              OnFailure: {Destination: !GetAtt Dlq.Arn}
"""

# A tiny stream function: records what it got, fails items whose pk starts with "bad", crashes on "crash".
PROCESSOR = """
import json, os

def handler(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(os.environ["CALLS_FILE"], "a") as f:
        f.write(json.dumps({"keys": keys, "event": event}) + "\\n")
    if any(k.startswith("crash") for k in keys):
        raise RuntimeError("boom")
    failed = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]
              if r["dynamodb"]["Keys"]["pk"]["S"].startswith("bad")]
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}
"""


@pytest.fixture
def stack(
    write_template: Callable[..., Template], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> Iterator[tuple[Resources, StreamPoller, Path]]:
    options = {"batch_size": 10, "bisect": "false", **getattr(request, "param", {})}
    calls = tmp_path / "calls.jsonl"
    template = write_template(STREAM_TEMPLATE % {"calls": calls, **options}, files={"processor/app.py": PROCESSOR})
    with provisioned_moto(template, monkeypatch) as resources:
        runtime = FunctionRuntime(resources)
        poller = StreamPoller(resources, runtime.invoke, boto3.client, retry_delay=0)
        yield resources, poller, calls


def put(resources: Resources, *keys: str, kind: str = "message") -> None:
    table = boto3.resource("dynamodb").Table(resources.ref("Items"))
    for key in keys:
        table.put_item(Item={"pk": key, "kind": kind})


def invocations(calls: Path) -> list[list[str]]:
    if not calls.exists():
        return []
    return [json.loads(line)["keys"] for line in calls.read_text().splitlines()]


def dlq_messages(resources: Resources) -> list[dict[str, Any]]:
    response = boto3.client("sqs").receive_message(QueueUrl=resources.ref("Dlq"), MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_records_reach_the_function_in_lambdas_event_shape(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "m1", "m2")

    poller.drain()

    event = json.loads(calls.read_text().splitlines()[0])["event"]
    record = event["Records"][0]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == resources.get_att("Items", "StreamArn")
    assert record["dynamodb"]["Keys"] == {"pk": {"S": "m1"}}
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "m1"}, "kind": {"S": "message"}}
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert invocations(calls) == [["m1", "m2"]]


def test_filter_criteria_drop_non_matching_records(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "status1", kind="status")
    put(resources, "m1")

    poller.drain()

    assert invocations(calls) == [["m1"]]


def test_each_record_is_delivered_once(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "m1")
    poller.drain()
    put(resources, "m2")

    poller.drain()
    poller.drain()

    assert invocations(calls) == [["m1"], ["m2"]]


@pytest.mark.parametrize("stack", [{"batch_size": 2}], indirect=True)
def test_batch_size_is_honoured(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "m1", "m2", "m3")

    poller.drain()

    assert invocations(calls) == [["m1", "m2"], ["m3"]]


def test_partial_batch_failure_retries_from_the_first_failed_record(
    stack: tuple[Resources, StreamPoller, Path],
) -> None:
    resources, poller, calls = stack
    put(resources, "m1", "bad2", "m3")

    poller.drain()

    # first try, then one retry (MaximumRetryAttempts: 1) from bad2, then the DLQ
    assert invocations(calls) == [["m1", "bad2", "m3"], ["bad2", "m3"]]
    (message,) = dlq_messages(resources)
    info = message["DDBStreamBatchInfo"]
    assert info["batchSize"] == 2
    assert info["streamArn"] == resources.get_att("Items", "StreamArn")
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"] == resources.get_att("Processor", "Arn")


def test_function_error_retries_then_goes_to_the_dlq(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "crash1")

    poller.drain()

    assert invocations(calls) == [["crash1"], ["crash1"]]
    (message,) = dlq_messages(resources)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["requestContext"]["approximateInvokeCount"] == 2


def test_the_shard_moves_on_after_a_batch_is_given_up(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "crash1")
    poller.drain()
    put(resources, "m2")

    poller.drain()

    assert invocations(calls)[-1] == ["m2"]


@pytest.mark.parametrize("stack", [{"bisect": "true"}], indirect=True)
def test_bisect_isolates_the_failing_record(stack: tuple[Resources, StreamPoller, Path]) -> None:
    resources, poller, calls = stack
    put(resources, "m1", "m2", "crash3", "m4")

    poller.drain()

    calls_made = invocations(calls)
    assert calls_made[0] == ["m1", "m2", "crash3", "m4"]
    assert ["m1", "m2"] in calls_made and ["m4"] in calls_made  # the good halves went through
    (message,) = dlq_messages(resources)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1  # only the poison record is given up


def test_poller_without_stream_sources_does_nothing(template: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    with provisioned_moto(template, monkeypatch) as resources:
        poller = StreamPoller(resources, lambda *_: None, boto3.client, enabled_functions=set())

        assert poller.sources == []
        assert poller.poll_once() == 0
