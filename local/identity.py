"""The local user pool's users: real Cognito ID tokens for ``POST /_local/token`` and the console's users for
``POST /_local/users`` (docs/local-stack.md).

``/_local/token`` keeps one user per (tenant, admin) combination, created on first use: the token is issued by
moto's Cognito through the same ``AdminInitiateAuth`` call a back office would use, so its claims are what the
pool really puts there. ``/_local/users`` creates a user with the email and password a person signs in with.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

TENANT_ATTRIBUTE = "custom:tenant_id"  # contract: DESIGN §2 Identity
ADMIN_GROUP = "admin"
MAX_TENANT_LENGTH = 64  # the pool's StringAttributeConstraints


class TokenRequestError(ValueError):
    """The token request is unusable (400 to the caller)."""


class UserExistsError(ValueError):
    """``POST /_local/users`` for an email the pool already has (409)."""


class PasswordPolicyError(ValueError):
    """The password does not meet the pool's policy (422)."""


@dataclass
class LocalIdentity:
    cognito: Any  # a boto3 cognito-idp client
    user_pool_id: str
    client_id: str

    def __post_init__(self) -> None:
        # A fresh password per run: these users only exist in this run's moto.
        self._password = f"Local-{secrets.token_urlsafe(12)}-9aZ"
        self._lock = threading.Lock()
        self._ready: set[str] = set()

    def id_token(self, tenant_id: str | None, admin: bool) -> str:
        _check_tenant(tenant_id)
        email = self.username_for(tenant_id, admin)
        with self._lock:  # two concurrent first requests for one user must not both create it
            if email not in self._ready:
                self._create_user(email, tenant_id, admin)
                self._ready.add(email)
        result = self.cognito.admin_initiate_auth(
            UserPoolId=self.user_pool_id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": self._password},
        )
        return str(result["AuthenticationResult"]["IdToken"])

    @staticmethod
    def username_for(tenant_id: str | None, admin: bool) -> str:
        """A stable, distinct e-mail per (tenant, admin) pair; tenant ids may hold characters e-mails cannot."""
        role = "admin" if admin else "member"
        if tenant_id is None:
            return f"no-tenant.{role}@local.test"
        slug = re.sub(r"[^a-z0-9]+", "-", tenant_id.lower()).strip("-")[:24] or "t"
        digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:8]
        return f"{slug}-{digest}.{role}@local.test"

    def create_user(self, email: str, password: str, tenant_id: str | None, admin: bool) -> None:
        """A user who signs in with ``email`` and ``password`` (confirmed, permanent password), or nothing at all:
        a password the pool refuses leaves no half-made user behind."""
        _check_tenant(tenant_id)
        errors = self.cognito.exceptions
        try:
            self.cognito.admin_create_user(
                UserPoolId=self.user_pool_id,
                Username=email,
                UserAttributes=self._attributes(email, tenant_id),
                MessageAction="SUPPRESS",
            )
        except errors.UsernameExistsException as exc:
            raise UserExistsError(f"a user with the email {email} exists") from exc
        try:
            self.cognito.admin_set_user_password(
                UserPoolId=self.user_pool_id, Username=email, Password=password, Permanent=True
            )
        except errors.InvalidPasswordException as exc:
            self.cognito.admin_delete_user(UserPoolId=self.user_pool_id, Username=email)
            raise PasswordPolicyError(self.password_policy()) from exc
        if admin:
            self.cognito.admin_add_user_to_group(UserPoolId=self.user_pool_id, Username=email, GroupName=ADMIN_GROUP)

    def password_policy(self) -> str:
        """The pool's password policy in words (from the pool itself, so it is the template's)."""
        pool = self.cognito.describe_user_pool(UserPoolId=self.user_pool_id)["UserPool"]
        policy = (pool.get("Policies") or {}).get("PasswordPolicy") or {}
        needs = [
            word
            for key, word in (
                ("RequireUppercase", "an upper-case letter"),
                ("RequireLowercase", "a lower-case letter"),
                ("RequireNumbers", "a digit"),
                ("RequireSymbols", "a symbol"),
            )
            if policy.get(key)
        ]
        text = f"the password must have at least {policy.get('MinimumLength', 8)} characters"
        return text + (f" with {', '.join(needs)}" if needs else "")

    @staticmethod
    def _attributes(email: str, tenant_id: str | None) -> list[dict[str, str]]:
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        if tenant_id is not None:
            attributes.append({"Name": TENANT_ATTRIBUTE, "Value": tenant_id})
        return attributes

    def _create_user(self, email: str, tenant_id: str | None, admin: bool) -> None:
        attributes = self._attributes(email, tenant_id)
        # The user may exist already: created by an earlier LocalIdentity against the same pool.
        with contextlib.suppress(self.cognito.exceptions.UsernameExistsException):
            self.cognito.admin_create_user(
                UserPoolId=self.user_pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
            )
        self.cognito.admin_set_user_password(
            UserPoolId=self.user_pool_id, Username=email, Password=self._password, Permanent=True
        )
        if admin:
            self.cognito.admin_add_user_to_group(UserPoolId=self.user_pool_id, Username=email, GroupName=ADMIN_GROUP)


def _check_tenant(tenant_id: str | None) -> None:
    if tenant_id is not None and not (0 < len(tenant_id) <= MAX_TENANT_LENGTH):
        raise TokenRequestError(f"tenant_id must be 1 to {MAX_TENANT_LENGTH} characters")
