"""The secrets guard sees what the real handlers put out: responses, Powertools logs and events.

Each test plants a leak on the real path (a handler answering a secret, the layer logging one, an event carrying
one), then takes the guard's findings itself, so that the planted leak does not fail the test but a missing
finding does. tests/unit/test_secrets_guard.py shows that a finding fails a test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import secrets_guard

AUTH_TOKEN = "wiring-auth-token-0123456789"
CHANNEL = {
    "provider": "twilio",
    "name": "Main",
    "phone_number": "+14155238886",
    "account_sid": "AC" + "0123456789abcdef" * 2,
    "auth_token": AUTH_TOKEN,
}


@pytest.fixture
def guard() -> secrets_guard.SecretsGuard:
    assert secrets_guard._guard is not None, "tests/conftest.py loads the guard"
    assert AUTH_TOKEN in secrets_guard._guard.registry  # harvested from this file
    return secrets_guard._guard


def _create(invoke: Any, api_event: Any, claims: Any) -> dict[str, Any]:
    response = invoke("ChannelsApiFunction", api_event("POST", "/v1/channels", json=CHANNEL, claims=claims()))
    assert response["statusCode"] == 201, response
    return dict(response)


def test_a_clean_request_is_seen_and_finds_nothing(
    guard: secrets_guard.SecretsGuard, invoke: Any, api_event: Any, claims: Any
) -> None:
    guard.take_leaks()

    _create(invoke, api_event, claims)

    seen = [where for where, _ in guard._outputs]
    assert "response of ChannelsApiFunction" in seen
    assert any(w.startswith("log record ") and "channels_api/app.py" in w for w in seen)  # "channel created"
    assert guard.take_leaks() == []


def test_a_secret_in_a_handler_response_is_found(
    guard: secrets_guard.SecretsGuard, invoke: Any, api_event: Any, claims: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.services.channels

    monkeypatch.setattr(gateway.services.channels, "hint", lambda secret: secret)  # a view without masking

    response = _create(invoke, api_event, claims)

    assert json.loads(response["body"])["credentials"] == {"auth_token": AUTH_TOKEN}
    wheres = {leak.where for leak in guard.take_leaks()}
    assert wheres == {"response of ChannelsApiFunction"}


# Powertools also prints the line, and the phase's captured stdout is scanned after the test: allowed here.
@pytest.mark.secrets_allowed("plants a leak in a log line on purpose")
def test_a_secret_in_a_powertools_log_line_is_found(
    guard: secrets_guard.SecretsGuard, invoke: Any, api_event: Any, claims: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.credentials import CredentialsCipher
    from gateway.observability import logger

    encrypt = CredentialsCipher.encrypt

    def logging_encrypt(self: CredentialsCipher, tenant_id: str, channel_id: str, secrets: Any) -> str:
        logger.info("encrypting", extra={"secrets": dict(secrets)})  # the bug the guard exists for
        return encrypt(self, tenant_id, channel_id, secrets)

    monkeypatch.setattr(CredentialsCipher, "encrypt", logging_encrypt)

    _create(invoke, api_event, claims)

    leaks = guard.take_leaks()
    assert [leak.where for leak in leaks] == [leak.where for leak in leaks if leak.where.startswith("log record ")]
    assert leaks and all("secrets={'auth_token': '«SECRET»'}" in leak.excerpt for leak in leaks), leaks


def test_a_secret_in_an_event_is_found(guard: secrets_guard.SecretsGuard, aws: Any) -> None:
    from gateway.events import EventPublisher

    guard.take_leaks()

    assert EventPublisher().publish("message.sent", {"channel": {"auth_token": AUTH_TOKEN}})

    assert [leak.where for leak in guard.take_leaks()] == ["an event put on EventBridge"]
