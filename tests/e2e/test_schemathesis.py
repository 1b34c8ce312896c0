"""schemathesis against docs/openapi.json on the running local stack, with a real Cognito token (issue #7).

Every operation of the document gets generated requests, valid and invalid ones (schemathesis' positive and
negative modes), sent over real HTTP through the local gateway's JWT check to the handlers. Each answer must
not be a 5xx and must conform to the document: a documented status code, the documented content type, a body
that matches the documented schema.

Two Twilio channels, a Meta channel and three conversations (made by signed Twilio webhooks, as Twilio posts them)
exist first, and path ids are drawn from the real ids half of the time, so that the GET/PATCH paths reach data and
not only 404s. Sends in those conversations go to the local provider sandbox. The webhook operations are fuzzed
too: half of the generated requests are addressed to a seeded channel and signed as the provider would sign them
(Twilio: the form, for the channel's URL and auth token; Meta: the exact bytes, with the app secret; the
verification GET: the channel's verify token), so that their 200 answers are checked as well as the refusals. The
figures are in docs/RELIABILITY.md ("Fuzzing"); ``-s`` prints the answers this run got.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from local.openapi import OUTPUT
from local.testing import LocalStackClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TENANT = "schemathesis"
ACCOUNT = "AC" + "5c" * 16
CONTACTS = ("+14155550170", "+14155550171", "+14155550172")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12  # per operation, on top of schemathesis' coverage phase: the module stays under a minute


@dataclass
class Seeded:
    token: str
    channel_ids: list[str] = field(default_factory=list)
    conversation_ids: list[str] = field(default_factory=list)
    responses: dict[str, int] = field(default_factory=dict)  # "METHOD path status" → count, for the report
    twilio: dict[str, Any] = field(default_factory=dict)  # the conversations' channel, with its auth_token
    meta: dict[str, Any] = field(default_factory=dict)  # a Meta channel, with its app_secret


def _twilio_channel(local_stack: LocalStackClient, token: str, auth_token: str) -> dict[str, Any]:
    number = "+1415" + str(secrets.randbelow(10**7)).rjust(7, "0")
    response = local_stack.request("POST", "/v1/channels", token=token, json={
        "provider": "twilio", "name": "Schemathesis", "phone_number": number, "account_sid": ACCOUNT,
        "auth_token": auth_token, "messaging_service_sid": None, "location_id": None,
    })
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def seeded(local_stack: LocalStackClient) -> Seeded:
    """Two Twilio channels of TENANT: one for the channel operations (which may rotate, disable or delete it),
    one whose conversations (one per contact, posted as signed Twilio webhooks) the conversation operations use,
    so that sends there reach the provider sandbox whatever the channel operations did."""
    token = local_stack.token(tenant_id=TENANT, admin=True)
    auth_token = secrets.token_hex(16)
    exposed = _twilio_channel(local_stack, token, secrets.token_hex(16))
    channel = _twilio_channel(local_stack, token, auth_token)
    number = channel["phone_number"]
    validator = RequestValidator(auth_token)
    for contact in CONTACTS:
        sid = "SM" + secrets.token_hex(16)
        form = {"MessageSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT, "From": f"whatsapp:{contact}",
                "To": f"whatsapp:{number}", "Body": "Hello", "NumMedia": "0", "ProfileName": "Schema Thesis",
                "WaId": contact[1:], "ApiVersion": "2010-04-01"}
        signature = validator.compute_signature(channel["webhook_url"], form)
        posted = local_stack.request("POST", "/webhooks/twilio", data=form, headers={"X-Twilio-Signature": signature})
        assert posted.status_code == 200, posted.text
    listed = local_stack.request("GET", "/v1/conversations?limit=100", token=token)
    assert listed.status_code == 200, listed.text
    conversations = [c["id"] for c in listed.json()["items"]]
    assert len(conversations) == len(CONTACTS), conversations
    app_secret = secrets.token_hex(16)
    meta = local_stack.request("POST", "/v1/channels", token=token, json={
        "provider": "meta", "name": "Schemathesis", "phone_number_id": str(10**14 + secrets.randbelow(10**14)),
        "business_account_id": "102290129340398", "display_phone_number": "+15550783881",
        "access_token": "EAAG-" + secrets.token_hex(8), "app_secret": app_secret, "verify_token": None,
    })
    assert meta.status_code == 201, meta.text
    REAL_IDS["channels"][:] = [exposed["id"]]
    REAL_IDS["conversations"][:] = conversations
    return Seeded(token, [exposed["id"]], conversations, twilio={**channel, "auth_token": auth_token},
                  meta={**meta.json(), "app_secret": app_secret})


# Loaded at import (schemathesis' lazy ``from_fixture`` loader does not work with pytest 9); the stack's URL and
# token are given at call time.
schema = schemathesis.openapi.from_path(OUTPUT)
REAL_IDS: dict[str, list[str]] = {"channels": [], "conversations": []}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Half of the ids are real ones (of the kind the path names), so that operations reach data."""
    if not path_parameters or "id" not in path_parameters or context.operation is None:
        return st.just(path_parameters)
    real = REAL_IDS["channels" if context.operation.path.startswith("/v1/channels") else "conversations"]
    if not real:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(real).map(lambda i: {**path_parameters, "id": i}))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi_document(case: Any, seeded: Seeded, local_stack: LocalStackClient) -> None:
    _fresh_idempotency_key(case)
    body = _sign_webhook(case, seeded)
    response = case.call_and_validate(base_url=local_stack.base_url, session=local_stack.http, checks=CHECKS,
                                      headers={"Authorization": f"Bearer {seeded.token}"}, **body)
    key = f"{case.method} {case.operation.path} {response.status_code}"
    seeded.responses[key] = seeded.responses.get(key, 0) + 1


def test_a_send_and_the_reads_after_it_conform(seeded: Seeded, local_stack: LocalStackClient) -> None:
    """Generated sends rarely get through (most generated bodies are refused): this one always does, so the
    201 body and the message list it lands in are checked against their documented schemas on every run."""
    conversation = seeded.conversation_ids[0]
    cases = [
        schema["/v1/conversations/{id}/messages"]["POST"].Case(
            path_parameters={"id": conversation}, body={"type": "text", "text": "Checked against the document"},
            headers={"Idempotency-Key": uuid.uuid4().hex}, media_type="application/json"),
        schema["/v1/conversations/{id}/messages"]["GET"].Case(path_parameters={"id": conversation}, query={"limit": 2}),
        schema["/v1/conversations/{id}"]["GET"].Case(path_parameters={"id": conversation}),
    ]
    statuses = []
    for case in cases:
        response = case.call_and_validate(base_url=local_stack.base_url, session=local_stack.http, checks=CHECKS,
                                          headers={"Authorization": f"Bearer {seeded.token}"})
        statuses.append(response.status_code)
    assert statuses == [201, 200, 200]


def _fresh_idempotency_key(case: Any) -> None:
    """schemathesis reuses a few key values ("0", "000…") with different bodies: every send would be a 409
    ``idempotency_conflict`` and none would reach the provider. A valid key is made unique (an invalid one is kept:
    the 422 is worth checking); replays and conflicts are the fuzz suite's business (tests/fuzz)."""
    for name in list(case.headers or {}):
        value = case.headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and re.fullmatch(r"[\x21-\x7e]{1,255}", value):
            case.headers[name] = f"{value[:200]}-{uuid.uuid4().hex[:16]}"


def _sign_webhook(case: Any, seeded: Seeded) -> dict[str, Any]:
    """Half of the webhook cases (those whose content hashes even) are addressed to a seeded channel and signed as
    the provider signs; they are sent as the bytes that were signed (returned as ``data=``). Others go as generated,
    to be refused."""
    path, method = case.operation.path, case.method.upper()
    if not path.startswith("/webhooks/"):
        return {}
    if int(hashlib.sha256(repr((case.body, case.query, case.headers)).encode()).hexdigest(), 16) % 2:
        return {}
    if path.startswith("/webhooks/twilio") and _is_form(case.body):
        form = dict(case.body)
        ours, url = ("To", "webhook_url") if path == "/webhooks/twilio" else ("From", "status_callback_url")
        form[ours] = f"whatsapp:{seeded.twilio['phone_number']}"
        form["AccountSid"] = seeded.twilio["account_sid"]
        case.headers = {**(case.headers or {}), "X-Twilio-Signature": RequestValidator(
            seeded.twilio["auth_token"]).compute_signature(seeded.twilio[url], form)}
        return {"data": urlencode(form).encode()}
    if path == "/webhooks/meta" and method == "GET" and isinstance(case.query, dict):
        case.query = {**case.query, "hub.verify_token": seeded.meta["verify_token"]}
        return {}
    if path == "/webhooks/meta" and method == "POST" and isinstance(case.body, dict):
        notification = copy.deepcopy(case.body)
        for entry in notification.get("entry") or []:
            for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
                value = change.get("value") if isinstance(change, dict) else None
                if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
                    value["metadata"]["phone_number_id"] = seeded.meta["phone_number_id"]
        raw = json.dumps(notification).encode()
        digest = hmac.new(seeded.meta["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
        case.headers = {**(case.headers or {}), "X-Hub-Signature-256": f"sha256={digest}"}
        return {"data": raw}
    return {}


def _is_form(body: Any) -> bool:
    return isinstance(body, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in body.items())


@pytest.fixture(scope="module", autouse=True)
def report(seeded: Seeded) -> Iterator[None]:
    started = time.monotonic()
    yield
    total = sum(seeded.responses.values())
    summary = ", ".join(f"{k}×{v}" for k, v in sorted(seeded.responses.items()))
    print(f"\nschemathesis: {total} requests in {time.monotonic() - started:.0f} s: {summary}")
