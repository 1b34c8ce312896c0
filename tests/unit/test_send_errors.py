"""Send error normalization (docs/errors.md): every listed code of both providers, the fallback rules, and the
documentation kept in step with the tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gateway.domain.errors import (
    CredentialsRejected,
    ProviderRejected,
    ProviderUnavailable,
    SendOutcomeUnknown,
)
from gateway.providers.send_errors import META, TWILIO, meta_error, twilio_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

# The codes the issue names, with what they must become (normalized code, retryable).
TWILIO_EXPECTED = {
    63016: ("outside_customer_service_window", False),
    63003: ("invalid_recipient", False),
    63018: ("rate_limited", True),
    63024: ("invalid_recipient", False),
    63032: ("marketing_experiment", False),
    63014: ("recipient_blocked", False),
    63017: ("rate_limited", True),
    20429: ("rate_limited", True),
    21211: ("invalid_recipient", False),
    20003: ("credentials_rejected", False),
}
META_EXPECTED = {
    131047: ("outside_customer_service_window", False),
    131026: ("undeliverable", False),
    130429: ("rate_limited", True),
    131056: ("pair_rate_limited", True),
    131048: ("spam_rate_limited", False),
    131049: ("marketing_limit", False),
    130472: ("marketing_experiment", False),
    131000: ("provider_error", True),
    100: ("invalid_parameter", False),
    190: ("credentials_rejected", False),
    368: ("account_restricted", False),
    4: ("rate_limited", True),
    80007: ("rate_limited", True),
    131057: ("provider_maintenance", True),
}


@pytest.mark.parametrize(("code", "expected"), sorted(TWILIO_EXPECTED.items()))
def test_twilio_codes(code: int, expected: tuple[str, bool]) -> None:
    error = twilio_error(400, {"code": code, "message": f"error {code}", "status": 400})

    assert (error.normalized_code, error.retryable) == expected
    assert error.as_error() == {"code": expected[0], "provider_code": str(code), "message": f"Twilio: error {code}",
                                "retryable": expected[1]}
    assert isinstance(error, ProviderUnavailable if expected[1] else (ProviderRejected, CredentialsRejected))


@pytest.mark.parametrize(("code", "expected"), sorted(META_EXPECTED.items()))
def test_meta_codes(code: int, expected: tuple[str, bool]) -> None:
    body = {"error": {"message": f"(#{code}) x", "type": "OAuthException", "code": code,
                      "error_data": {"details": "more"}, "fbtrace_id": "A"}}
    error = meta_error(400, body)

    assert (error.normalized_code, error.retryable) == expected
    assert error.provider_code == str(code)
    assert error.message == f"Meta: (#{code}) x (more)"


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "kind"),
    [
        (401, {}, "credentials_rejected", False, CredentialsRejected),
        (429, {}, "rate_limited", True, ProviderUnavailable),
        (503, {}, "provider_unavailable", True, ProviderUnavailable),
        (500, {}, "outcome_unknown", False, SendOutcomeUnknown),
        (504, {"code": 20500, "message": "Internal"}, "outcome_unknown", False, SendOutcomeUnknown),
        (400, {"code": 99999, "message": "new"}, "provider_error", False, ProviderRejected),
        (400, {"message": "no code"}, "provider_error", False, ProviderRejected),
    ],
)
def test_fallback_rules(status: int, body: dict, code: str, retryable: bool, kind: type) -> None:
    for error in (twilio_error(status, body), meta_error(status, {"error": body})):
        assert (error.normalized_code, error.retryable) == (code, retryable)
        assert type(error) is kind


def test_meta_5xx_with_a_listed_transient_code_is_retried_not_ambiguous() -> None:
    error = meta_error(500, {"error": {"message": "Something went wrong", "code": 131000}})

    assert error.retryable and not isinstance(error, SendOutcomeUnknown)


def test_docs_list_every_code_of_both_tables() -> None:
    text = DOC.read_text()
    for table in (TWILIO, META):
        for code, rule in table.items():
            row = re.search(rf"^\| {code} \| `([a-z_]+)` \| (yes|no) \|", text, re.MULTILINE)
            assert row, f"docs/errors.md has no row for {code}"
            assert row.group(1) == rule.code and (row.group(2) == "yes") == rule.retryable, code
