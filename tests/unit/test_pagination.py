from __future__ import annotations

import contextlib

import pytest
from gateway.domain.errors import ValidationFailed
from gateway.store.pagination import decode_cursor, encode_cursor
from hypothesis import given
from hypothesis import strategies as st

KEY = {"pk": {"S": "TENANT#acme#CONV#cv_1"}, "sk": {"S": "MSG#2026-01-01T00:00:00.000Z#msg_1"}}


def test_round_trip() -> None:
    cursor = encode_cursor(KEY)
    assert cursor and decode_cursor(cursor, partition_attr="pk", partition_value="TENANT#acme#CONV#cv_1") == KEY


def test_a_cursor_for_another_tenant_is_refused() -> None:
    cursor = encode_cursor(KEY)
    with pytest.raises(ValidationFailed, match="cursor"):
        decode_cursor(cursor, partition_attr="pk", partition_value="TENANT#evil#CONV#cv_1")


@given(st.text(max_size=200))
def test_garbage_is_a_validation_error_never_a_crash(cursor: str) -> None:
    with contextlib.suppress(ValidationFailed):
        decode_cursor(cursor, partition_attr="pk", partition_value="TENANT#acme#CONV#cv_1")
