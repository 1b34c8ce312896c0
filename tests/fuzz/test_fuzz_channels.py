"""Fuzz: the admin API (``channels_api``) → only 2xx/4xx, never a 5xx.

Bodies are mutated from valid Twilio and Meta channels and patches (auto-reply rules included), or are any JSON
or bytes under any content type; path ids are real, random or odd; claims come in every form (no tenant, not an
admin, groups as a list or flattened by the authorizer). Phone numbers come from a small pool, so most creations
after the first few are 409 ``channel_exists`` and the tables stay small. ``/check`` goes to the provider
sandbox. This module's moto is its own: disabling or rotating channels here changes nothing elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.support import (
    META_CHANNEL_ID,
    TENANT,
    TWILIO_CHANNEL_ID,
    ApiRequest,
    FuzzStack,
    api_requests,
    fuzz_settings,
    json_values,
    mutated,
    path_ids,
    quoted,
)

pytestmark = pytest.mark.fuzz

TENANTS = (TENANT, TENANT, "globex")

TWILIO_BODY: dict[str, Any] = {
    "provider": "twilio", "name": "Main", "phone_number": "+14155230001", "account_sid": "AC" + "1" * 32,
    "auth_token": "fuzz-channel-auth-token-1234", "messaging_service_sid": None, "location_id": None,
}
META_BODY: dict[str, Any] = {
    "provider": "meta", "name": "Meta", "phone_number_id": "1065403522429", "business_account_id": "4195612579",
    "display_phone_number": "+15550783882", "access_token": "fuzz-channel-access-token-1234",
    "app_secret": "fuzz-channel-app-secret-1234", "verify_token": None, "location_id": "store-1",
}
AUTO_REPLY: dict[str, Any] = {
    "mode": "on", "rules": [{"keywords": ["price", "cost"], "reply": "It costs 5 €."}], "fallback": "Hi!",
    "unsupported_notice": None, "operator_lock_minutes": 30,
}
PATCHES: list[dict[str, Any]] = [
    {"name": "Renamed", "location_id": None},
    {"auto_reply": AUTO_REPLY},
    {"status": "active"},
    {"status": "disabled"},
    {"auth_token": "fuzz-rotated-auth-token-1234", "messaging_service_sid": "MG" + "2" * 32},
    {"access_token": "fuzz-rotated-access-token-1234", "app_secret": "fuzz-rotated-secret-1234",
     "verify_token": "fuzz-verify-token-2"},
]
# A few numbers and ids only: after the first creations most are 409 channel_exists.
NUMBERS = ["+14155230001", "+14155230002", "+447700900001", "+15550783882"]
GRAPH_IDS = ["1065403522429", "1065403522430"]


def _bodies() -> st.SearchStrategy[Any]:
    pinned = st.one_of(
        st.sampled_from([TWILIO_BODY, META_BODY]).flatmap(lambda body: mutated(body, max_mutations=3)),
        st.builds(lambda number, body: {**body, "phone_number": number}, st.sampled_from(NUMBERS),
                  st.just(TWILIO_BODY)),
        st.builds(lambda graph_id, body: {**body, "phone_number_id": graph_id}, st.sampled_from(GRAPH_IDS),
                  st.just(META_BODY)),
    )
    return st.one_of(pinned, json_values)


def _patches() -> st.SearchStrategy[Any]:
    # Any subset of the fields, each with one of its example values or null.
    subsets = st.fixed_dictionaries({}, optional={
        name: st.sampled_from([None, *(p[name] for p in PATCHES if name in p)])
        for name in sorted({name for p in PATCHES for name in p})
    })
    return st.one_of(st.sampled_from(PATCHES).flatmap(lambda body: mutated(body, max_mutations=3)), subsets,
                     json_values)


CHANNEL_PATHS = path_ids([TWILIO_CHANNEL_ID, META_CHANNEL_ID]).map(lambda cid: f"/v1/channels/{quoted(cid)}")
channel_requests = st.one_of(
    api_requests("POST", st.just("/v1/channels"), bodies=_bodies(), tenants=TENANTS),
    api_requests("POST", st.just("/v1/channels"), bodies=_bodies(), tenants=TENANTS),
    api_requests("GET", st.just("/v1/channels"), tenants=TENANTS),
    api_requests("GET", CHANNEL_PATHS, tenants=TENANTS),
    api_requests("PATCH", CHANNEL_PATHS, bodies=_patches(), tenants=TENANTS),
    api_requests("PATCH", CHANNEL_PATHS, bodies=_patches(), tenants=TENANTS),
    api_requests("DELETE", CHANNEL_PATHS, tenants=TENANTS),
    api_requests("POST", CHANNEL_PATHS.map(lambda path: f"{path}/check"), tenants=TENANTS),
)
ADMIN = {"custom:tenant_id": TENANT, "sub": "fuzz", "cognito:groups": "[admin]"}
TOO_MANY_RULES = {"auto_reply": {"mode": "on", "rules": [{"keywords": ["k" * 1000] * 50, "reply": "r" * 4096}] * 10}}


ROTATE_TO_NON_ASCII = {"auth_token": "rotated-tøken-€-1234"}


@fuzz_settings(950)
@given(requests=st.lists(channel_requests, min_size=1, max_size=3))
# Regressions. Auto-reply rules within the model's limits (100 rules of 50 keywords and 4096-character replies)
# but beyond what a DynamoDB item holds (400 KB): the write failed with a ValidationException (a 500).
@example(requests=[ApiRequest("PATCH", f"/v1/channels/{TWILIO_CHANNEL_ID}", claims=ADMIN,
                              body=json.dumps(TOO_MANY_RULES).encode())])
# A rotated auth token that is not ASCII was stored; the health check (and every send) then failed in the HTTP
# client's Basic-auth encoding (a 500). Found by schemathesis (tests/e2e/test_schemathesis.py).
@example(requests=[
    ApiRequest("PATCH", f"/v1/channels/{TWILIO_CHANNEL_ID}", claims=ADMIN,
               body=json.dumps(ROTATE_TO_NON_ASCII).encode()),
    ApiRequest("POST", f"/v1/channels/{TWILIO_CHANNEL_ID}/check", claims=ADMIN, body=None),
])
def test_channels_api(stack: FuzzStack, requests: list[ApiRequest]) -> None:
    """Short sequences: a request can leave state (a rotated secret, a disabled channel) that the next one trips on."""
    for request in requests:
        response = stack.invoke(request.event(stack))
        if request.method != "GET" and 200 <= response["statusCode"] < 300:
            stack.tally.storage["channels_api"] += 1
