from __future__ import annotations

from typing import Any

import pytest
from gateway.domain.errors import Forbidden, Unauthorized
from gateway.http.auth import TENANT_ID, identity_from_event, parse_groups
from hypothesis import given
from hypothesis import strategies as st

from local.apigw import flatten_claims


def _event(claims: dict | None) -> dict:
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}} if claims is not None else {}}


def _claims(tenant: Any = "acme", groups: Any = "[ops]") -> dict[str, Any]:
    return {"sub": "u1", "custom:tenant_id": tenant, "cognito:groups": groups}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["admin", "ops"], {"admin", "ops"}),
        ("[admin ops]", {"admin", "ops"}),
        ("[admin]", {"admin"}),
        ("admin", {"admin"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
        # A comma is part of a name: Cognito allows punctuation in group names.
        ("[ops,admin]", {"ops,admin"}),
        ("ops,admin", {"ops,admin"}),
        (["ops,admin"], {"ops,admin"}),
        ("[ops,admin ops]", {"ops,admin", "ops"}),
        # Exactly what the authorizer makes of ['"admin","ops"'] (one group whose name holds quotes): the
        # flattened form is the only string form API Gateway sends, and reading it as JSON would make this
        # user an admin.
        ('["admin","ops"]', {'"admin","ops"'}),
        ('["admin"]', {'"admin"'}),
    ],
)
def test_groups_in_list_and_http_api_flattened_forms(raw: object, expected: set[str]) -> None:
    assert parse_groups(raw) == expected


# Cognito group names: 1 to 128 characters of [\p{L}\p{M}\p{S}\p{N}\p{P}] (CreateGroup's GroupName pattern).
GROUP_NAMES = st.text(st.characters(categories=["L", "M", "S", "N", "P"]), min_size=1, max_size=128)
NAME_SETS = st.sets(st.one_of(GROUP_NAMES, st.sampled_from(["admin", "ops,admin", '"admin"', "[admin]", "]", "["])),
                    max_size=6)


@given(NAME_SETS)
def test_any_valid_group_names_flattened_as_the_authorizer_does_parse_back_exactly(names: set[str]) -> None:
    flattened = flatten_claims({"cognito:groups": sorted(names)})["cognito:groups"]

    assert parse_groups(flattened) == names == parse_groups(sorted(names))


@pytest.mark.parametrize("groups", ["[ops,admin]", "ops,admin", ["ops,admin"], '["admin"]', "[admin,]", "[ admin, ]"])
def test_a_group_whose_name_only_contains_admin_is_not_admin(groups: object) -> None:
    with pytest.raises(Forbidden):
        identity_from_event(_event(_claims(groups=groups)), require_admin=True)


def test_no_claims_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        identity_from_event(_event(None))


def test_no_tenant_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        identity_from_event(_event({"sub": "u1", "cognito:groups": "[admin]"}))


def test_admin_required() -> None:
    claims = _claims()
    assert identity_from_event(_event(claims)).tenant_id == "acme"
    with pytest.raises(Forbidden):
        identity_from_event(_event(claims), require_admin=True)
    claims["cognito:groups"] = "[ops admin]"
    assert identity_from_event(_event(claims), require_admin=True).is_admin


@pytest.mark.parametrize("tenant", ["acme", "globex", "t1", "0", "tenant-a", "in_x", "a" * 64, "7f3c2a9e-1b2c-4d5e"])
def test_realistic_tenant_ids_are_taken_as_they_are(tenant: str) -> None:
    assert identity_from_event(_event(_claims(tenant))).tenant_id == tenant


@pytest.mark.parametrize(
    "tenant",
    [
        " acme", "acme ", "acme\n", "Acme", "ACME", "acme#send", "X#send", "#", "-acme", "_acme", "a" * 65,
        "ac.me", "ac/me", "ac me", "acmé", "ａｃｍｅ", "acme\x00", 7, True, ["acme"],
    ],
)
def test_any_other_tenant_id_is_403_never_normalized(tenant: object) -> None:
    with pytest.raises(Forbidden) as refused:
        identity_from_event(_event(_claims(tenant)))

    assert "custom:tenant_id" in refused.value.message and "not a valid tenant id" in refused.value.message


@given(st.one_of(st.from_regex(TENANT_ID, fullmatch=True), st.text(max_size=70)))
def test_a_tenant_id_is_accepted_exactly_when_it_matches_the_pattern_and_is_never_changed(tenant: str) -> None:
    try:
        identity = identity_from_event(_event(_claims(tenant)))
    except Forbidden:
        assert not TENANT_ID.fullmatch(tenant)
    else:
        assert identity.tenant_id == tenant and TENANT_ID.fullmatch(tenant) and "#" not in tenant
