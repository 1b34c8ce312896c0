"""Identity from the claims that API Gateway's JWT authorizer verified (DESIGN §2 Identity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import Forbidden, Unauthorized

TENANT_CLAIM = "custom:tenant_id"
GROUPS_CLAIM = "cognito:groups"
ADMIN_GROUP = "admin"


@dataclass(frozen=True, slots=True)
class Identity:
    tenant_id: str
    subject: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


def parse_groups(value: Any) -> frozenset[str]:
    """Groups arrive as a JSON list, or flattened by the HTTP API authorizer to ``"[admin ops]"``."""
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(str(v) for v in value if str(v))
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = text.replace(",", " ").split()
    return frozenset(p.strip().strip('"') for p in parts if p.strip().strip('"'))


def claims_of(event: dict[str, Any]) -> dict[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    jwt = authorizer.get("jwt") or {}
    claims = jwt.get("claims")
    return claims if isinstance(claims, dict) and claims else None


def identity_from_event(event: dict[str, Any], *, require_admin: bool = False) -> Identity:
    """No verified claims → Unauthorized; no tenant claim or not an admin where required → Forbidden."""
    claims = claims_of(event)
    if claims is None:
        raise Unauthorized("A valid bearer token is required.")
    tenant_id = str(claims.get(TENANT_CLAIM) or "").strip()
    if not tenant_id:
        raise Forbidden("The token carries no tenant (custom:tenant_id).")
    identity = Identity(
        tenant_id=tenant_id,
        subject=str(claims.get("sub") or ""),
        groups=parse_groups(claims.get(GROUPS_CLAIM)),
    )
    if require_admin and not identity.is_admin:
        raise Forbidden("This operation needs a member of the admin group.")
    return identity
