"""Fuzz: the tenant API (``inbox_api``, ``send_message``) → only 2xx/4xx, never a 5xx.

Requests are drawn for every route: bodies mutated from valid ones (and any JSON or bytes under any content
type), ``limit``/``cursor`` query parameters (real cursors, garbage, and keys of the caller's own partition
with missing or extra attributes), path ids, ``Idempotency-Key`` headers (a small pool, so that replays and
conflicts happen), and claims in every form the authorizer could hand over. Valid sends go to the provider
sandbox; the cases that stored something are counted as reaching storage.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.support import (
    CONVERSATIONS,
    MESSAGE_IDS,
    MESSAGES_PARTITION,
    REAL_CURSORS,
    TENANT,
    ApiRequest,
    FuzzStack,
    api_requests,
    b64url,
    cursors,
    fuzz_settings,
    header_values,
    json_values,
    list_queries,
    mutated,
    path_ids,
    quoted,
    random_headers,
)

pytestmark = pytest.mark.fuzz

TENANTS = (TENANT, TENANT, "globex")
ADMIN = {"custom:tenant_id": TENANT, "sub": "fuzz", "cognito:groups": "[admin]"}
TWILIO_CONVERSATION = CONVERSATIONS["twilio"]
META_CONVERSATION = CONVERSATIONS["meta"]


def conversation_paths(suffix: str = "") -> st.SearchStrategy[str]:
    return path_ids(list(CONVERSATIONS.values())).map(lambda cid: f"/v1/conversations/{quoted(cid)}{suffix}")


# ------------------------------------------------------------------------------------------ inbox_api
PATCHES = st.one_of(
    mutated({"bot_mode": "shadow", "release_operator_lock": True, "mark_read": True}, huge=False),
    st.fixed_dictionaries({}, optional={  # any subset of the fields, each with a value of the right kind or null
        "bot_mode": st.sampled_from(["on", "shadow", "off", None]),
        "release_operator_lock": st.sampled_from([True, False, None]),
        "mark_read": st.sampled_from([True, False, None]),
    }),
    st.sampled_from([{"bot_mode": None}, {}, {"mark_read": False}, {"bot_mode": "off"}]),
    json_values,
)
inbox_requests = st.one_of(
    api_requests("GET", st.just("/v1/conversations"), tenants=TENANTS, queries=list_queries(
        cursors({"gsi1pk": f"TENANT#{TENANT}"}, [REAL_CURSORS["conversations"]]))),
    api_requests("GET", conversation_paths(), tenants=TENANTS),
    api_requests("PATCH", conversation_paths(), bodies=PATCHES, tenants=TENANTS),
    api_requests("GET", conversation_paths("/messages"), tenants=TENANTS, queries=list_queries(
        cursors({"pk": MESSAGES_PARTITION}, [REAL_CURSORS["messages"]]))),
)


@fuzz_settings(1800)
@given(request=inbox_requests)
# Regressions. A cursor naming the caller's own partition but not a whole key reached DynamoDB (a 500):
@example(request=ApiRequest("GET", f"/v1/conversations/{TWILIO_CONVERSATION}/messages", claims=ADMIN,
                            query="cursor=" + b64url(json.dumps({"pk": {"S": MESSAGES_PARTITION}}).encode())))
@example(request=ApiRequest("GET", "/v1/conversations", claims=ADMIN, query="cursor=" + b64url(json.dumps(
    {"gsi1pk": {"S": f"TENANT#{TENANT}"}, "gsi1sk": {"S": "x"}, "pk": {"S": "x"}, "sk": {"S": ""}}).encode())))
# A patch that asks for nothing (found by schemathesis) became an empty DynamoDB update (a 500):
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=b'{"release_operator_lock": null, "mark_read": null}'))
@example(request=ApiRequest("PATCH", "/v1/conversations/cv_missing", claims=ADMIN,
                            body=b'{"release_operator_lock": null}'))
# A base64 body of bytes that are not UTF-8 made Powertools raise (a 500):
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=base64.b64encode(b"\xff\xfe").decode().encode(), encoding="flag-true"))
# Content types Powertools has no parser for, or a multipart one without a boundary (a 500):
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=b'{"mark_read": true}', content_type="text/plain"))
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=None, content_type="multipart/form-data"))
# JSON nested beyond the parser's recursion limit (a 500), NaN, lone surrogates:
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=b"[" * 200_000))
@example(request=ApiRequest("PATCH", f"/v1/conversations/{TWILIO_CONVERSATION}", claims=ADMIN,
                            body=b'{"bot_mode": NaN, "x": "\\ud800"}'))
def test_inbox_api(stack: FuzzStack, request: ApiRequest) -> None:
    response = stack.invoke(request.event(stack))
    if response["statusCode"] == 200:
        assert isinstance(json.loads(response["body"]), dict)
        if request.method == "PATCH":
            stack.tally.storage["inbox_api"] += 1


# ------------------------------------------------------------------------------------------ send_message
VALID_SENDS: list[dict[str, Any]] = [
    {"type": "text", "text": "Hello from the fuzzer", "preview_url": False},
    {"type": "image", "media_url": "https://example.com/a.png", "caption": "A picture"},
    {"type": "document", "media_url": "https://example.com/a.pdf", "filename": "a.pdf"},
    {"type": "audio", "media_url": "https://example.com/a.ogg"},
    {"type": "template", "template": {"name": "hello_world", "language": "en_US", "components": []}},
    {"type": "template", "template": {"content_sid": "HX" + "0" * 32, "variables": {"1": "x"}}},
    {"type": "reaction", "message_id": MESSAGE_IDS[-1], "emoji": "👍"},
    {"type": "read", "message_id": "wamid.seed-0"},
]
send_bodies = st.one_of(st.sampled_from(VALID_SENDS).flatmap(lambda body: mutated(body, max_mutations=2)),
                        json_values)
IDEMPOTENCY_POOL = ["key-1", "key-2", "key-3", "k" * 255]


@st.composite
def idempotency_headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    headers = draw(random_headers)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        value = draw(st.one_of(st.sampled_from(IDEMPOTENCY_POOL), header_values, st.just("k" * 256)))
        headers.append((draw(st.sampled_from(["Idempotency-Key", "idempotency-key"])), value))
    return headers


# Mostly another (or no) conversation: a send that gets through costs a provider call and several writes.
send_paths = st.one_of(
    st.sampled_from([f"/v1/conversations/{c}/messages" for c in CONVERSATIONS.values()]),
    conversation_paths("/messages"),
    conversation_paths("/messages"),
)
SEND = f"/v1/conversations/{META_CONVERSATION}/messages"


@fuzz_settings(1300)
@given(request=api_requests("POST", send_paths, bodies=send_bodies, headers=idempotency_headers(), tenants=TENANTS))
# Regression: a lone surrogate in a template's components (free-form JSON) reached the Idempotency-Key
# fingerprint, which encodes the body as UTF-8 (a 500).
@example(request=ApiRequest("POST", SEND, claims=ADMIN, headers=[("Idempotency-Key", "key-surrogate")], body=(
    b'{"type": "template", "template": {"name": "hello_world", "language": "en_US", "components": [{"type": '
    b'"\\udc00"}]}}')))
def test_send_message(stack: FuzzStack, request: ApiRequest) -> None:
    response = stack.invoke(request.event(stack))
    if response["statusCode"] in (200, 201):
        stack.tally.storage["send_message"] += 1
