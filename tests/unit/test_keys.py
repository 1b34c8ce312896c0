"""Composite keys are injective: different parts never make the same DynamoDB key or derived id (docs/decisions.md D1).

Each table's key builders are tried together, with tiny alphabets that hold the separators, so that a builder
whose parts could run into each other (tenant ``x#send`` + key ``k`` against tenant ``x`` + key ``send#k``) is
found at once. Every key that was valid before the rule is unchanged byte for byte (the pinned examples).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gateway.domain import ids
from gateway.domain.channel import route_key_meta, route_key_twilio, route_key_verify
from gateway.domain.keys import compose, segment
from gateway.store.idempotency_repo import idempotency_pk
from gateway.store.models import (
    ChannelModel,
    ContactModel,
    ConversationModel,
    MessageModel,
    ProviderMessageModel,
    RouteModel,
    tenant_pk,
)
from hypothesis import given
from hypothesis import strategies as st

# Small alphabets with both separators: collisions, if a builder allowed any, would be found quickly.
PART = st.text(alphabet="ab#\x1f", max_size=4)
TENANT = st.text(alphabet="ab#-", min_size=1, max_size=4)
STAMP = st.sampled_from(["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z", "a#b", "a"])
PROVIDER = st.sampled_from(["twilio", "meta", "a#b"])
SCOPE = st.sampled_from(["send", "autoreply", "a", "a#send"])


def _stable_msg(tenant: str, provider: str, provider_message_id: str) -> str:
    return ids.stable_id("msg", tenant, provider, provider_message_id)


# table → kind → (build, argument strategies, indexes of the arguments that more parts follow)
Builder = tuple[Callable[..., Any], tuple[st.SearchStrategy[str], ...], frozenset[int]]
TABLES: dict[str, tuple[str, dict[str, Builder]]] = {
    "channels": ("#", {
        "channel": (ChannelModel.key, (TENANT, PART), frozenset({0})),
        "route-twilio": (lambda v: RouteModel.key(route_key_twilio(v)), (PART,), frozenset()),
        "route-meta": (lambda v: RouteModel.key(route_key_meta(v)), (PART,), frozenset()),
        "route-verify": (lambda v: RouteModel.key(route_key_verify(v)), (PART,), frozenset()),
    }),
    "conversations": ("#", {
        "contact": (ContactModel.key, (TENANT, PART), frozenset({0})),
        "conversation": (ConversationModel.key, (TENANT, PART), frozenset({0})),
    }),
    "conversations.by_activity": ("#", {
        "activity": (lambda t, at, c: (tenant_pk(t), ConversationModel.activity_key(at, c)), (TENANT, STAMP, PART),
                     frozenset({0, 1})),
    }),
    "messages": ("#", {
        "message": (lambda t, c, at, m: (MessageModel.partition(t, c), MessageModel.sort(at, m)),
                    (TENANT, PART, STAMP, PART), frozenset({0, 2})),
        "provider-message": (ProviderMessageModel.key, (TENANT, PROVIDER, PART), frozenset({0, 1})),
    }),
    "idempotency": ("#", {
        "key": (idempotency_pk, (TENANT, SCOPE, PART), frozenset({0, 1})),
    }),
    "derived ids": ("\x1f", {
        "conversation": (ids.conversation_id, (TENANT, PART, PART), frozenset({0, 1})),
        "message": (_stable_msg, (TENANT, PROVIDER, PART), frozenset({0, 1})),
    }),
}


@st.composite
def items(draw: st.DrawFn, table: str) -> list[tuple[str, tuple[str, ...]]]:
    builders = TABLES[table][1]
    chosen = []
    for _ in range(draw(st.integers(2, 12))):
        kind = draw(st.sampled_from(sorted(builders)))
        chosen.append((kind, tuple(draw(strategy) for strategy in builders[kind][1])))
    return chosen


def _assert_injective(table: str, chosen: list[tuple[str, tuple[str, ...]]]) -> None:
    separator, builders = TABLES[table]
    seen: dict[Any, tuple[str, tuple[str, ...]]] = {}
    for kind, args in set(chosen):
        build, _, segments = builders[kind]
        if any(separator in args[i] for i in segments):
            with pytest.raises(ValueError):
                build(*args)
            continue
        key = build(*args)
        assert seen.setdefault(key, (kind, args)) == (kind, args), f"{key!r} made by two different part tuples"


@pytest.mark.parametrize("table", sorted(TABLES))
@given(data=st.data())
def test_different_parts_never_make_the_same_key(table: str, data: st.DataObject) -> None:
    _assert_injective(table, data.draw(items(table)))


@pytest.mark.parametrize(
    "chosen",
    [
        [("key", ("x#send", "send", "k")), ("key", ("x", "send", "send#k"))],  # tenant x#send's key k
        [("key", ("a", "send", "autoreply#m")), ("key", ("a", "autoreply", "m"))],  # '#' in an Idempotency-Key
        [("key", ("a", "send", "b#send#k")), ("key", ("a#send#b", "send", "k"))],
    ],
    ids=["tenant-x-send", "key-with-scope", "key-with-tenant"],
)
def test_the_collisions_of_idempotency_keys_are_gone(chosen: list[tuple[str, tuple[str, ...]]]) -> None:
    _assert_injective("idempotency", chosen)


@given(st.lists(PART, min_size=1, max_size=5), st.sampled_from(["#", "\x1f"]))
def test_a_composed_key_reads_back_into_exactly_its_parts(parts: list[str], separator: str) -> None:
    if any(separator in part for part in parts[:-1]):
        with pytest.raises(ValueError):
            compose(*parts, separator=separator)
        return
    key = compose(*parts, separator=separator)

    assert key.split(separator, len(parts) - 1) == parts


def test_tenant_x_cannot_reach_tenant_x_send_idempotency_keys() -> None:
    # Before: both were TENANT#x#send#send#k, so tenant x could occupy and replay tenant x#send's keys.
    assert idempotency_pk("x", "send", "send#k") == "TENANT#x#send#send#k"
    for build in (
        lambda: idempotency_pk("x#send", "send", "k"),
        lambda: tenant_pk("x#send"),
        lambda: MessageModel.partition("x#CONV", "cv_1"),
        lambda: ProviderMessageModel.key("x#PMSG", "twilio", "SM1"),
        lambda: ids.conversation_id("x\x1fch_1", "ch_2", "+14155550100"),
        lambda: segment("a#b"),
    ):
        with pytest.raises(ValueError):
            build()


def test_every_key_valid_before_the_rule_is_byte_identical() -> None:
    assert tenant_pk("acme") == "TENANT#acme"
    assert ChannelModel.key("acme", "ch_1") == ("TENANT#acme", "CHANNEL#ch_1")
    assert RouteModel.key(route_key_twilio("+14155238886")) == ("ROUTE#twilio#+14155238886", "ROUTE")
    assert RouteModel.key(route_key_meta("106540352242922")) == ("ROUTE#meta#106540352242922", "ROUTE")
    assert RouteModel.key(route_key_verify("tok-_.en")) == ("ROUTE#meta-verify#tok-_.en", "ROUTE")
    assert ContactModel.key("acme", "+14155550100") == ("TENANT#acme", "CONTACT#+14155550100")
    assert ConversationModel.key("acme", "cv_1") == ("TENANT#acme", "CONV#cv_1")
    assert ConversationModel.activity_key("2026-01-01T00:00:00.000Z", "cv_1") == "2026-01-01T00:00:00.000Z#cv_1"
    assert MessageModel.partition("acme", "cv_1") == "TENANT#acme#CONV#cv_1"
    assert MessageModel.sort("2026-01-01T00:00:00.000Z", "msg_1") == "MSG#2026-01-01T00:00:00.000Z#msg_1"
    assert ProviderMessageModel.key("acme", "meta", "wamid.X==") == ("TENANT#acme#PMSG#meta#wamid.X==", "PMSG")
    assert idempotency_pk("acme", "send", "order#42") == "TENANT#acme#send#order#42"
    # Derived ids are stored in keys too: the same inputs still give the same ids as before.
    assert ids.conversation_id("acme", "ch_abc", "+14155550100") == "cv_l4zk3hm7ainb6ah3zeuj35wi"
    assert ids.stable_id("msg", "acme", "twilio", "SM" + "0" * 32) == "msg_ztv2mrov27qijxrkkb6pxey4"
    assert ids.stable_id("msg", "acme", "autoreply", "msg_x") == "msg_nh7iik5pp5hutlgmwqx5su2u"
