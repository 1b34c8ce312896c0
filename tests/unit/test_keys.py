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
from gateway.domain.contact import Identity, IdentityKind, derive_link
from gateway.domain.keys import compose, segment
from gateway.store.channels_repo import account_key
from gateway.store.idempotency_repo import idempotency_pk
from gateway.store.models import (
    ChannelModel,
    ContactModel,
    ConversationModel,
    IdentityModel,
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
IDENTITY_KIND = st.sampled_from(["phone", "wa", "a#b"])
# A contact's sort key holds its id (``ct_…``) or, before contacts had ids, its phone (``+…``): one label, told
# apart by the value's first character (docs/decisions.md D18).
CONTACT_ID = st.builds(lambda p: "ct_" + p, PART)
PHONE = st.builds(lambda p: "+" + p, PART)
GENERATION = st.sampled_from(["0", "1", "2"])


def _stable_msg(tenant: str, provider: str, provider_message_id: str) -> str:
    return ids.stable_id("msg", tenant, provider, provider_message_id)


def _contact_id(tenant: str, kind: str, value: str, generation: str) -> str:
    return derive_link(tenant, Identity(IdentityKind.PHONE if kind == "phone" else IdentityKind.WA_USER, value),
                       int(generation)).contact_id


# table → kind → (build, argument strategies, indexes of the arguments that more parts follow)
Builder = tuple[Callable[..., Any], tuple[st.SearchStrategy[str], ...], frozenset[int]]
TABLES: dict[str, tuple[str, dict[str, Builder]]] = {
    "channels": ("#", {
        "channel": (ChannelModel.key, (TENANT, PART), frozenset({0})),
        "route-twilio": (lambda v: RouteModel.key(route_key_twilio(v)), (PART,), frozenset()),
        "route-meta": (lambda v: RouteModel.key(route_key_meta(v)), (PART,), frozenset()),
        "route-verify": (lambda v: RouteModel.key(route_key_verify(v)), (PART,), frozenset()),
    }),
    # the webhooks' channel cache: misses of numbers and of business accounts share one LRU
    "channel cache": ("#", {
        "route-twilio": (route_key_twilio, (PART,), frozenset()),
        "route-meta": (route_key_meta, (PART,), frozenset()),
        "route-verify": (route_key_verify, (PART,), frozenset()),
        "business-account": (account_key, (PART,), frozenset()),
    }),
    "conversations": ("#", {
        "contact": (ContactModel.key, (TENANT, CONTACT_ID), frozenset({0})),
        "legacy-contact": (ContactModel.legacy_key, (TENANT, PHONE), frozenset({0})),
        "identity": (IdentityModel.key, (TENANT, IDENTITY_KIND, PART), frozenset({0, 1})),
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
        # the anchor is a segment too: a group's conversation has one part more under the same prefix
        "conversation": (ids.conversation_id, (TENANT, PART, PART), frozenset({0, 1, 2})),
        "group-conversation": (ids.group_conversation_id, (TENANT, PART, PART), frozenset({0, 1})),
        "message": (_stable_msg, (TENANT, PROVIDER, PART), frozenset({0, 1})),
        # the anchor's value is a segment too: after an erasure the generation follows it
        "contact": (_contact_id, (TENANT, st.sampled_from(["phone", "wa"]), PART, GENERATION), frozenset({0, 2})),
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
        lambda: ids.conversation_id("x", "ch_1", "+1415\x1f"),  # would be a group's input otherwise
        lambda: IdentityModel.key("x", "wa#x", "US.1"),
        lambda: derive_link("x", Identity(IdentityKind.PHONE, "+1\x1f1"), 1),
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
    assert ContactModel.legacy_key("acme", "+14155550100") == ("TENANT#acme", "CONTACT#+14155550100")
    assert ContactModel.key("acme", "ct_1") == ("TENANT#acme", "CONTACT#ct_1")
    assert IdentityModel.key("acme", "phone", "+14155550100") == ("TENANT#acme", "IDENTITY#phone#+14155550100")
    assert IdentityModel.key("acme", "wa", "US.ENT.118") == ("TENANT#acme", "IDENTITY#wa#US.ENT.118")
    assert account_key("102290129340398") == "waba#102290129340398"
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
    # ... and the ids of contacts and groups, as first derived (before every key went through compose)
    assert derive_link("acme", Identity(IdentityKind.PHONE, "+14155550100")).contact_id == "ct_3wqgm5sdwc5nlnbkljlwk3kr"
    bsuid = Identity(IdentityKind.WA_USER, "US.13491208655302741918")
    assert derive_link("acme", bsuid, 2).contact_id == "ct_3amoclj56mz7jpfxa3qruv2v"
    assert ids.conversation_id("acme", "ch_abc", bsuid.value) == "cv_xchlks4fk24wwbxs24ykqwkd"
    assert ids.group_conversation_id("acme", "ch_abc", "120363025246125486@g.us") == "cv_viqzfcnb3745rfmztt3bdpa2"
