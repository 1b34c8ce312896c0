"""``local.moto_transactions`` against moto's own TransactWriteItems: the same random transactions (puts, updates,
deletes, condition checks, failing conditions, two operations on one item, invalid keys) give the same answers,
the same items and the same stream records with and without the cheap snapshot."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.moto_transactions import make_transactions_cheap
from local.testing import fake_aws_env

TABLES = ("ranged", "hashed")


def _create(client: Any) -> None:
    client.create_table(
        TableName="ranged", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.create_table(
        TableName="hashed", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _key(rng: random.Random, table: str) -> dict[str, Any]:
    key: dict[str, Any] = {"pk": {"S": f"p{rng.randrange(3)}"}}
    if table == "ranged":
        key["sk"] = {"S": f"s{rng.randrange(3)}"}
    return key


def _operation(rng: random.Random) -> dict[str, Any]:
    table = rng.choice(TABLES)
    key = _key(rng, table)
    kind = rng.choice(["Put", "Put", "Update", "Update", "Delete", "ConditionCheck"])
    conditions = [None, "attribute_not_exists(pk)", "attribute_exists(pk)", "n < :limit"]
    condition = rng.choice(conditions)
    op: dict[str, Any] = {"TableName": table}
    values: dict[str, Any] = {}
    if kind == "Put":
        op["Item"] = {**key, "n": {"N": str(rng.randrange(5))}, "v": {"S": rng.choice("abc")}}
        if rng.random() < 0.05:
            del op["Item"]["pk"]  # invalid: moto refuses the whole transaction
    else:
        op["Key"] = key
    if kind == "Update":
        op["UpdateExpression"] = rng.choice(["SET n = if_not_exists(n, :zero) + :one", "SET v = :v", "REMOVE v"])
        values |= {":zero": {"N": "0"}, ":one": {"N": "1"}, ":v": {"S": rng.choice("xyz")}}
        values = {k: v for k, v in values.items() if k in op["UpdateExpression"]}
    if kind == "ConditionCheck" and condition is None:
        condition = "attribute_exists(pk)"
    if condition:
        op["ConditionExpression"] = condition
        if ":limit" in condition:
            values[":limit"] = {"N": "3"}
    if values:
        op["ExpressionAttributeValues"] = values
    return {kind: op}


def _transactions(seed: int, count: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    return [[_operation(rng) for _ in range(rng.randint(1, 4))] for _ in range(count)]


def _state(client: Any) -> dict[str, Any]:
    items = {t: sorted(str(sorted(i.items())) for i in client.scan(TableName=t)["Items"]) for t in TABLES}
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    records: dict[str, list[Any]] = {}
    for table in TABLES:
        arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        page = streams.get_records(ShardIterator=iterator["ShardIterator"])
        records[table] = [(r["eventName"], r["dynamodb"]["Keys"], r["dynamodb"].get("NewImage"),
                           r["dynamodb"].get("OldImage"), r["dynamodb"]["SequenceNumber"]) for r in page["Records"]]
    return {"items": items, "streams": records}


def _run(transactions: list[list[dict[str, Any]]]) -> tuple[list[Any], list[dict[str, Any]]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        outcomes: list[Any] = []
        states: list[dict[str, Any]] = []
        for number, transaction in enumerate(transactions):
            try:
                client.transact_write_items(TransactItems=transaction)
                outcomes.append("ok")
            except ClientError as error:
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                outcomes.append((error.response["Error"]["Code"], reasons))
            if number % 10 == 9:
                states.append(_state(client))
        states.append(_state(client))
        return outcomes, states


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_aws_env(monkeypatch)
    yield


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cheap_snapshot_behaves_exactly_like_motos_own(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    transactions = _transactions(seed, 120)
    expected = _run(transactions)

    make_transactions_cheap(monkeypatch.setattr)
    actual = _run(transactions)

    outcomes = expected[0]
    assert "ok" in outcomes and any(o != "ok" for o in outcomes)  # both paths were exercised
    assert actual[0] == expected[0]
    assert actual[1] == expected[1]


def test_it_refuses_to_run_outside_the_atomic_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    from local.moto_atomic import make_dynamodb_atomic

    make_dynamodb_atomic(monkeypatch.setattr)
    with pytest.raises(RuntimeError, match="before make_dynamodb_atomic"):
        make_transactions_cheap(monkeypatch.setattr)
