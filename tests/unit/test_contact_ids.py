"""Contact ids and conversation ids derived from a contact's anchor (docs/decisions.md D24)."""

from __future__ import annotations

import pytest
from gateway.domain import ids
from gateway.domain.contact import ContactRef, Identity, IdentityKind, derive_link, first_link, identities
from hypothesis import given
from hypothesis import strategies as st

phones = st.integers(min_value=1_000_000, max_value=999_999_999_999_999).map(lambda n: f"+{n}")
bsuids = st.from_regex(r"[A-Z]{2}\.[A-Za-z0-9]{1,40}", fullmatch=True)


def test_a_phone_anchored_conversation_keeps_the_id_conversations_always_had() -> None:
    link = first_link("acme", ContactRef(phone="+14155550100", wa_user_id="US.1349"))
    assert link.anchor == Identity(IdentityKind.PHONE, "+14155550100")
    assert link.conversation_id("acme", "ch_1") == ids.stable_id("cv", "acme", "ch_1", "+14155550100")


@given(phone=phones, bsuid=bsuids, tenant=st.sampled_from(["acme", "globex"]))
def test_the_phone_anchors_whenever_there_is_one_and_ids_are_stable(phone: str, bsuid: str, tenant: str) -> None:
    both = first_link(tenant, ContactRef(phone=phone, wa_user_id=bsuid))
    assert both == first_link(tenant, ContactRef(phone=phone))
    assert both != first_link(tenant, ContactRef(wa_user_id=bsuid))
    assert first_link(tenant, ContactRef(wa_user_id=bsuid)).anchor == Identity(IdentityKind.WA_USER, bsuid)
    assert [i.kind for i in identities(ContactRef(phone=phone, wa_user_id=bsuid))] == [
        IdentityKind.PHONE,
        IdentityKind.WA_USER,
    ]


@given(phone=phones, generation=st.integers(min_value=1, max_value=50))
def test_after_an_erasure_the_same_person_gets_a_new_id(phone: str, generation: int) -> None:
    anchor = Identity(IdentityKind.PHONE, phone)
    assert derive_link("acme", anchor, generation).contact_id != derive_link("acme", anchor).contact_id
    assert derive_link("acme", anchor, generation).generation == generation


@given(phone=phones, group=st.text(min_size=1, max_size=30))
def test_a_group_conversation_is_never_a_one_to_one(phone: str, group: str) -> None:
    assert ids.group_conversation_id("acme", "ch_1", group) != ids.conversation_id("acme", "ch_1", phone)
    if anchor := group.replace(ids.ID_SEPARATOR, ""):
        assert ids.group_conversation_id("acme", "ch_1", group) != ids.conversation_id("acme", "ch_1", anchor)
    # an anchor that would read as ("group", <id>) holds the separator, which no phone or BSUID does: refused
    with pytest.raises(ValueError):
        ids.conversation_id("acme", "ch_1", f"group{ids.ID_SEPARATOR}{group}")


def test_replies_go_to_the_group_or_to_the_phone_else_the_bsuid() -> None:
    from gateway.domain.outbound import Recipient
    from gateway.store.contacts_repo import recipient_of
    from gateway.store.models import ConversationModel

    group = ConversationModel("TENANT#acme", "CONV#cv_g", kind="group", group_id="1203630", contact_phone="+1415555")
    assert recipient_of(group) == Recipient(group_id="1203630")  # never privately to a member
    both = ConversationModel("TENANT#acme", "CONV#cv_1", contact_phone="+14155550100", contact_wa_user_id="US.1349")
    assert recipient_of(both) == Recipient(phone="+14155550100", wa_user_id="US.1349")
    bsuid_only = ConversationModel("TENANT#acme", "CONV#cv_2", contact_wa_user_id="US.1349")
    assert recipient_of(bsuid_only) == Recipient(wa_user_id="US.1349")
