"""Fuzz: Meta's webhook (``webhook_meta``, GET verification and POST notifications) → only 2xx/4xx.

- Any request: bodies, encodings, headers and signatures that cannot be right → a 4xx, nothing stored.
- Notifications mutated from the official spec's examples (``../shared/specs``, through tests/meta_support.py)
  and from status notifications, serialised as Meta does and signed with the channel's app secret, so that the
  normalizer and the store run on them: a node replaced by any JSON value (huge strings, lone surrogates,
  NaN, numbers beyond float range), keys dropped or added, lists duplicated or emptied, types changed → 200
  (odd items are skipped and counted) or 400 for a shape that is not a notification.
- Verification GETs with any query string; the right verify token answers exactly the challenge.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.support import (
    META_APP_SECRET,
    META_PHONE_NUMBER_ID,
    META_VERIFY_TOKEN,
    FuzzStack,
    encoding_mutations,
    fuzz_settings,
    json_values,
    meta_event,
    mutate_encoding,
    mutated,
    query_strings,
    random_headers,
    raw_bodies,
    sign_meta,
    texts,
)
from tests.meta_support import change_value, notification, status, webhook_examples

pytestmark = pytest.mark.fuzz

MAX_BODY = 3 * 1024 * 1024 + 64 * 1024  # gateway.providers.meta_webhook.MAX_BODY_BYTES


def _status_notifications() -> list[dict[str, Any]]:
    failed = status("wamid.fuzz-unknown", "failed", errors=[
        {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "24 hours passed"}}])
    priced = status("wamid.fuzz-unknown-2", "delivered", conversation={"id": "c1", "origin": {"type": "service"}},
                    pricing={"billable": True, "pricing_model": "CBP", "category": "service"})
    return [
        notification(change_value(META_PHONE_NUMBER_ID, statuses=[status("wamid.seed-0", "read"), failed])),
        notification(change_value(META_PHONE_NUMBER_ID, statuses=[priced, status("wamid.x", "deleted")])),
        notification(change_value(META_PHONE_NUMBER_ID, errors=[{"code": 131000, "title": "Something"}])),
    ]


SEEDS: list[dict[str, Any]] = [*webhook_examples().values(), *_status_notifications()]
seeds = st.sampled_from(SEEDS)


def _meta_bytes(payload: Any) -> bytes:
    """As Meta serialises: non-ASCII (and lone surrogates) escaped; Python's NaN/Infinity left as they are."""
    return json.dumps(payload).encode("ascii")


# ------------------------------------------------------------------------------------------ any request
@fuzz_settings(1500)
@given(
    body=st.one_of(raw_bodies(huge=MAX_BODY), seeds.map(_meta_bytes)),
    signature=st.one_of(
        st.none(), st.just(""), st.just("sha256="), st.text(max_size=80).filter(lambda s: "\r" not in s),
        st.from_regex(r"sha256=[0-9a-fA-F]{64}", fullmatch=True), st.just("sha1=" + "0" * 40),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""]),
    headers=random_headers,
    encoding=encoding_mutations,
    data=st.data(),
)
@example(body=b"[" * 200_000, signature="sha256=" + "0" * 64, content_type="application/json", headers=[],
         encoding="as-is", data=None)
def test_any_notification_is_refused_with_a_4xx(
    stack: FuzzStack, body: bytes | None, signature: str | None, content_type: str,
    headers: list[tuple[str, str]], encoding: str, data: st.DataObject | None,
) -> None:
    header_value = signature.encode("latin-1", "replace").decode("latin-1") if signature is not None else None
    event = meta_event(stack, body or b"", header_value, headers=[("content-type", content_type), *headers])
    response = stack.invoke(mutate_encoding(event, encoding, data))
    assert 400 <= response["statusCode"] < 500, response  # no valid signature: never accepted


# ------------------------------------------------------------------------------------------ signed
@st.composite
def signed_notifications(draw: st.DrawFn) -> dict[str, Any]:
    payload = draw(seeds.flatmap(lambda seed: mutated(seed, max_mutations=4)))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        payload = draw(json_values)  # any JSON, signed: the shape check must refuse it with a 400
    return {"payload": payload}


def _example_with(name: str, kind: str, key: str, value: Any) -> dict[str, Any]:
    """The spec's example ``name`` with ``messages[0][kind][key] = value`` and a message id of its own."""
    payload = copy.deepcopy(webhook_examples()[name])
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = f"wamid.regression-{kind}-{key}"
    message[kind][key] = value
    return {"payload": payload}


@fuzz_settings(700)
@given(case=signed_notifications(), headers=random_headers)
# Regressions. A lone surrogate (a contact's name here) could not be stored (a 500, and Meta retries for 7 days):
@example(case={"payload": json.loads(json.dumps(SEEDS[0]).replace("Sheena Nelson", "\\ud800"))}, headers=[])
# Unbounded fields stored as they came made the message item larger than DynamoDB's 400 KB (a 500):
@example(case=_example_with("Location Message", "location", "name", "x" * 420_000), headers=[])
@example(case=_example_with("Image Message", "image", "caption", "x" * 420_000), headers=[])
# A number beyond float range was stored as Infinity, which the inbox API cannot answer as JSON:
@example(case=_example_with("Location Message", "location", "latitude", 1e308 * 10), headers=[])
def test_signed_notifications(stack: FuzzStack, case: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    body = _meta_bytes(case["payload"])
    response = stack.invoke(meta_event(stack, body, sign_meta(body, META_APP_SECRET), headers=headers))
    if response["statusCode"] == 200:
        summary = json.loads(response["body"])
        if summary["stored"] or summary["duplicates"] or summary["statuses"]:
            stack.tally.storage["webhook_meta"] += 1


# ------------------------------------------------------------------------------------------ verification
hub_values = {
    "hub.mode": st.one_of(st.just("subscribe"), st.just("subscribe"), st.just("unsubscribe"), texts),
    "hub.verify_token": st.one_of(st.just(META_VERIFY_TOKEN), st.just(META_VERIFY_TOKEN),
                                  st.just(META_VERIFY_TOKEN + "x"), st.just(META_VERIFY_TOKEN.upper()), texts),
    "hub.challenge": st.one_of(st.integers(min_value=0).map(str), st.just("<script>alert(1)</script>"), texts,
                               st.just("1" * 129)),
}


@st.composite
def verification_queries(draw: st.DrawFn) -> str:
    """A third Meta's own request (maybe with extra parameters), a third with one parameter changed, missing or
    repeated, a third anything at all."""
    kind = draw(st.sampled_from(["meta", "perturbed", "any"]))
    if kind == "any":
        return str(draw(query_strings))
    pairs = [("hub.mode", "subscribe"), ("hub.challenge", str(draw(st.integers(0, 2**63)))),
             ("hub.verify_token", META_VERIFY_TOKEN)]
    if kind == "perturbed":
        index = draw(st.integers(min_value=0, max_value=2))
        name = pairs[index][0]
        how = draw(st.sampled_from(["change", "drop", "repeat"]))
        if how == "drop":
            del pairs[index]
        else:
            changed = (name, draw(hub_values[name]))
            pairs[index:index + 1] = [changed] if how == "change" else [pairs[index], changed]
    pairs += draw(st.lists(st.tuples(texts, texts), max_size=2))
    return urlencode(draw(st.permutations(pairs)))


@fuzz_settings(800)
@given(query=verification_queries(), headers=random_headers, body=st.one_of(st.none(), st.binary(max_size=20)))
def test_verification(stack: FuzzStack, query: str, headers: list[tuple[str, str]], body: bytes | None) -> None:
    response = stack.invoke(stack.event("GET", "/webhooks/meta", query=query, headers=headers, body=body))
    if response["statusCode"] == 200:  # only the right token, and only ever the plain challenge echoed
        params = parse_qsl(query, keep_blank_values=True)
        assert ("hub.verify_token", META_VERIFY_TOKEN) in params, query
        assert ("hub.challenge", response["body"]) in params, (query, response)
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", response["body"]), response
        stack.tally.storage["webhook_meta"] += 1  # webhook_verified_at was recorded
