from __future__ import annotations

import contextlib

import pytest
from gateway.domain.phone import from_twilio_address, from_wa_id, is_e164, normalize_e164
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("number", ["+14155238886", "+15550783881", "+5511987654321", "+4412345"])
def test_accepts_e164_including_metas_555_test_numbers(number: str) -> None:
    assert is_e164(number)


@pytest.mark.parametrize("number", ["14155238886", "+04155238886", "+1", "+1234567890123456", "+1 415", "", "+1a"])
def test_rejects_anything_that_is_not_e164_by_shape(number: str) -> None:
    assert not is_e164(number)


def test_normalizes_pasted_forms() -> None:
    assert normalize_e164(" +1 (415) 523-8886 ") == "+14155238886"


def test_provider_address_forms() -> None:
    assert from_twilio_address("whatsapp:+14155238886") == "+14155238886"
    assert from_wa_id("16505551234") == "+16505551234"
    with pytest.raises(ValueError, match=r"E\.164"):
        from_twilio_address("whatsapp:abc")


@given(st.text(max_size=30))
def test_normalize_either_returns_e164_or_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert is_e164(normalize_e164(text))
