"""The secrets guard watches the local stack: its HTTP responses, its output and the events on its bus.

A leak is planted on the bus (an event carrying a secret, put through the stack's moto the way a publisher
would) and taken by the test itself, so that the planted leak does not fail it but a missing finding does.
"""

from __future__ import annotations

import json
import secrets

import boto3
import pytest

from local.testing import LocalStackClient
from tests import secrets_guard

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

E2E_AUTH_TOKEN = "e2e-guard-auth-token-0123456789"


@pytest.fixture
def guard() -> secrets_guard.SecretsGuard:
    assert secrets_guard._guard is not None, "tests/conftest.py loads the guard"
    return secrets_guard._guard


def test_responses_and_output_of_the_stack_are_scanned(
    guard: secrets_guard.SecretsGuard, local_stack: LocalStackClient
) -> None:
    watched = guard._stack_for(local_stack.base_url + "/")
    assert watched is not None and watched.alive and watched.queue_url
    guard.take_leaks()
    body = {
        "provider": "twilio",
        "name": "Guarded",
        "phone_number": "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0"),
        "account_sid": "AC" + secrets.token_hex(16),
        "auth_token": E2E_AUTH_TOKEN,
    }

    response = local_stack.request("POST", "/v1/channels", token=local_stack.token(f"t-{secrets.token_hex(4)}"),
                                   json=body)

    assert response.status_code == 201, response.text
    guard._poll_stacks()
    seen = [where for where, _ in guard._outputs]
    assert f"HTTP response of {watched.label}: POST /v1/channels → 201" in seen
    assert not any("/_local/token" in where for where in seen)  # issuing tokens is that endpoint's job
    assert any(where.startswith(f"output of {watched.label}") for where in seen)
    assert guard.take_leaks() == []


def test_a_secret_in_an_event_on_the_stack_bus_is_found(
    guard: secrets_guard.SecretsGuard, local_stack: LocalStackClient
) -> None:
    guard.take_leaks()
    events = boto3.client(
        "events",
        endpoint_url=local_stack.state["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bus = next(iter(local_stack.state["event_buses"].values()))
    detail = json.dumps({"channel": {"auth_token": E2E_AUTH_TOKEN}})

    events.put_events(Entries=[
        {"Source": secrets_guard.EVENT_SOURCE, "DetailType": "message.sent", "Detail": detail, "EventBusName": bus}
    ])

    leaks = guard.take_leaks()
    # Found twice: put by code of this process (botocore PutEvents), and read back from the stack's bus.
    assert sorted(leak.where for leak in leaks) == [
        "an event on the bus of local stack " + local_stack.base_url,
        "an event put on EventBridge",
    ]
    assert all("«SECRET»" in leak.excerpt for leak in leaks)


def test_a_streamed_response_is_scanned_once_read(
    guard: secrets_guard.SecretsGuard, local_stack: LocalStackClient
) -> None:
    token = local_stack.token(f"t-{secrets.token_hex(4)}")  # /_local/token: not counted
    guard.take_leaks()
    before = guard.counts["HTTP responses"]

    response = local_stack.request("GET", "/v1/channels", token=token, stream=True)  # as schemathesis sends
    assert response.json()["items"] == []

    guard.take_leaks()
    assert guard.counts["HTTP responses"] == before + 1
