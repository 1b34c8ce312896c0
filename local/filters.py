"""Lambda event filtering (FilterCriteria patterns) applied to a stream record, as the event source mapping does.

Supported: nested keys, exact values (any of a list), ``null``, ``prefix``, ``suffix``, ``equals-ignore-case``,
``anything-but`` (values or a prefix), ``exists``, ``numeric`` ranges and ``$or``. A record matches FilterCriteria
when it matches *any* of its patterns; no patterns means every record matches.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

_MISSING = object()


def matches_any(patterns: Iterable[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    patterns = list(patterns)
    return not patterns or any(matches(p, record) for p in patterns)


def matches(pattern: Mapping[str, Any], data: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(alternative, data) for alternative in rule):
                return False
            continue
        value = data.get(key, _MISSING) if isinstance(data, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not _value_matches(rule, value):
                return False
        else:
            raise ValueError(f"filter rule for {key!r} must be an object or a list, got {rule!r}")
    return True


def _value_matches(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]  # an array matches when any element does
    for rule in rules:
        if isinstance(rule, Mapping):
            if _operator_matches(rule, value, values):
                return True
        elif value is not _MISSING and any(v == rule for v in values):
            return True
    return False


def _operator_matches(rule: Mapping[str, Any], value: Any, values: list[Any]) -> bool:
    ((name, arg),) = rule.items()
    if name == "exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return False
    strings = [v for v in values if isinstance(v, str)]
    if name == "prefix":
        if isinstance(arg, Mapping):  # {"prefix": {"equals-ignore-case": "x"}}
            return any(v.lower().startswith(str(arg["equals-ignore-case"]).lower()) for v in strings)
        return any(v.startswith(arg) for v in strings)
    if name == "suffix":
        if isinstance(arg, Mapping):
            return any(v.lower().endswith(str(arg["equals-ignore-case"]).lower()) for v in strings)
        return any(v.endswith(arg) for v in strings)
    if name == "equals-ignore-case":
        return any(v.lower() == str(arg).lower() for v in strings)
    if name == "anything-but":
        return _anything_but(arg, values)
    if name == "numeric":
        return any(_numeric(arg, v) for v in values)
    raise ValueError(f"unsupported filter operator {name!r}")


def _anything_but(arg: Any, values: list[Any]) -> bool:
    if isinstance(arg, Mapping) and "prefix" in arg:
        return all(not (isinstance(v, str) and v.startswith(arg["prefix"])) for v in values)
    excluded = arg if isinstance(arg, list) else [arg]
    return all(v not in excluded for v in values)


_COMPARATORS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _numeric(conditions: list[Any], value: Any) -> bool:
    try:
        number = float(value)  # DynamoDB numbers arrive as strings ({"N": "42"})
    except (TypeError, ValueError):
        return False
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(_COMPARATORS[op](number, float(bound)) for op, bound in pairs)
