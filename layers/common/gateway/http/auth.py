"""Identity from the claims that API Gateway's JWT authorizer verified (docs/decisions.md D1, D2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import Forbidden, Unauthorized

TENANT_CLAIM = "custom:tenant_id"
GROUPS_CLAIM = "cognito:groups"
ADMIN_GROUP = "admin"
# The one rule for tenant ids (docs/decisions.md D1): taken as they are, never stripped or case-folded, so one
# tenant has one spelling; no "#", so a tenant id can never run into the next part of a key.
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Identity:
    tenant_id: str
    subject: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


def parse_groups(value: Any) -> frozenset[str]:
    """``cognito:groups`` exactly: a JSON list as the token holds it, or the HTTP API authorizer's flattening of
    it, ``"[admin ops]"`` (docs/decisions.md D2). Cognito group names hold no whitespace, so splitting the
    flattened form on spaces gives back exactly the names; nothing else splits a name (``ops,admin`` is one
    group). A string without brackets is one group name."""
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(str(v) for v in value if str(v))
    text = str(value)
    if len(text) >= 2 and text.startswith("[") and text.endswith("]"):
        return frozenset(name for name in text[1:-1].split(" ") if name)
    return frozenset({text}) if text else frozenset()


def claims_of(event: dict[str, Any]) -> dict[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    jwt = authorizer.get("jwt") or {}
    claims = jwt.get("claims")
    return claims if isinstance(claims, dict) and claims else None


def identity_from_event(event: dict[str, Any], *, require_admin: bool = False) -> Identity:
    """No verified claims → Unauthorized; no valid tenant claim or not an admin where required → Forbidden."""
    claims = claims_of(event)
    if claims is None:
        raise Unauthorized("A valid bearer token is required.")
    tenant_id = claims.get(TENANT_CLAIM)
    if tenant_id is None or tenant_id == "":
        raise Forbidden("The token carries no tenant (custom:tenant_id).")
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise Forbidden(
            "The token's tenant (custom:tenant_id) is not a valid tenant id: 1 to 64 lowercase letters, digits, "
            "'-' or '_', starting with a letter or a digit."
        )
    identity = Identity(
        tenant_id=tenant_id,
        subject=str(claims.get("sub") or ""),
        groups=parse_groups(claims.get(GROUPS_CLAIM)),
    )
    if require_admin and not identity.is_admin:
        raise Forbidden("This operation needs a member of the admin group.")
    return identity
