from __future__ import annotations

import pytest
from gateway.domain.errors import Forbidden, Unauthorized
from gateway.http.auth import identity_from_event, parse_groups
from hypothesis import given
from hypothesis import strategies as st


def _event(claims: dict | None) -> dict:
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}} if claims is not None else {}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["admin", "ops"], {"admin", "ops"}),
        ("[admin ops]", {"admin", "ops"}),
        ("[admin]", {"admin"}),
        ("admin", {"admin"}),
        ("[]", set()),
        (None, set()),
        ('["admin","ops"]', {"admin", "ops"}),
    ],
)
def test_groups_in_list_and_http_api_flattened_forms(raw: object, expected: set[str]) -> None:
    assert parse_groups(raw) == expected


@given(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True), max_size=5))
def test_flattened_form_round_trips(groups: list[str]) -> None:
    assert parse_groups("[" + " ".join(groups) + "]") == set(groups) == parse_groups(groups)


def test_no_claims_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        identity_from_event(_event(None))


def test_no_tenant_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        identity_from_event(_event({"sub": "u1", "cognito:groups": "[admin]"}))


def test_admin_required() -> None:
    claims = {"sub": "u1", "custom:tenant_id": "acme", "cognito:groups": "[ops]"}
    assert identity_from_event(_event(claims)).tenant_id == "acme"
    with pytest.raises(Forbidden):
        identity_from_event(_event(claims), require_admin=True)
    claims["cognito:groups"] = "[ops admin]"
    assert identity_from_event(_event(claims), require_admin=True).is_admin
