from __future__ import annotations

from gateway.http.errors import describe_validation_errors


def test_message_names_the_field_without_location_or_union_tag() -> None:
    status, code, message = describe_validation_errors(
        [{"loc": ("body", "twilio", "account_sid"), "msg": "Value error, must be a Twilio account SID"}]
    )
    assert (status, code) == (422, "validation_error")
    assert message == "account_sid: must be a Twilio account SID"


def test_invalid_json_is_a_400() -> None:
    assert describe_validation_errors([{"type": "json_invalid", "loc": ("body", 3), "msg": "x"}])[:2] == (
        400,
        "invalid_json",
    )
