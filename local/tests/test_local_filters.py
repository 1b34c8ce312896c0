"""Lambda FilterCriteria semantics on DynamoDB stream records."""

from __future__ import annotations

from typing import Any

import pytest

from local.filters import matches, matches_any

RECORD: dict[str, Any] = {
    "eventName": "INSERT",
    "dynamodb": {
        "NewImage": {
            "sk": {"S": "msg#01J"},
            "direction": {"S": "inbound"},
            "size": {"N": "42"},
            "tags": {"L": [{"S": "a"}]},
        }
    },
}


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": ["INSERT", "MODIFY"]},
        {"dynamodb": {"NewImage": {"direction": {"S": ["inbound"]}}}},
        {"dynamodb": {"NewImage": {"sk": {"S": [{"prefix": "msg#"}]}}}},
        {"dynamodb": {"NewImage": {"sk": {"S": [{"suffix": "01J"}]}}}},
        {"dynamodb": {"NewImage": {"direction": {"S": [{"equals-ignore-case": "INBOUND"}]}}}},
        {"dynamodb": {"NewImage": {"direction": {"S": [{"anything-but": ["outbound"]}]}}}},
        {"dynamodb": {"NewImage": {"sk": {"S": [{"anything-but": {"prefix": "status#"}}]}}}},
        {"dynamodb": {"NewImage": {"size": {"N": [{"numeric": [">", 10, "<=", 42]}]}}}},
        {"dynamodb": {"NewImage": {"direction": [{"exists": True}], "missing": [{"exists": False}]}}},
        {"$or": [{"eventName": ["REMOVE"]}, {"dynamodb": {"NewImage": {"direction": {"S": ["inbound"]}}}}]},
    ],
)
def test_matching_patterns(pattern: dict[str, Any]) -> None:
    assert matches(pattern, RECORD)


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": ["MODIFY"]},
        {"dynamodb": {"NewImage": {"direction": {"S": ["outbound"]}}}},
        {"dynamodb": {"NewImage": {"sk": {"S": [{"prefix": "status#"}]}}}},
        {"dynamodb": {"NewImage": {"missing": {"S": ["x"]}}}},
        {"dynamodb": {"NewImage": {"direction": {"S": [{"anything-but": "inbound"}]}}}},
        {"dynamodb": {"NewImage": {"size": {"N": [{"numeric": [">", 42]}]}}}},
        {"dynamodb": {"NewImage": {"direction": [{"exists": False}]}}},
        {"dynamodb": {"OldImage": {"direction": {"S": ["inbound"]}}}},
    ],
)
def test_non_matching_patterns(pattern: dict[str, Any]) -> None:
    assert not matches(pattern, RECORD)


def test_filters_are_ored_and_none_means_everything() -> None:
    assert matches_any([], RECORD)
    assert matches_any([{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}], RECORD)
    assert not matches_any([{"eventName": ["REMOVE"]}], RECORD)
