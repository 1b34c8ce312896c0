"""The HTTP API JWT authorizer, against the local Cognito's JWKS (served by moto).

Checks what API Gateway checks: RS256 signature by a key of the issuer's JWKS, ``iss``, ``aud`` (or
``client_id`` for access tokens) among the configured audiences, ``exp``/``nbf``/``iat``, and the route's
authorization scopes. Any failure is the caller's 401 ``{"message":"Unauthorized"}``.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK


class Unauthorized(Exception):
    """The token is missing or invalid (the reason is logged, never sent to the client)."""


class Forbidden(Exception):
    """Valid token without a scope the route requires."""


@dataclass(frozen=True)
class JwtAuthorizer:
    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str
    header_name: str = "authorization"

    def authorize(
        self, headers: dict[str, str], required_scopes: Sequence[str] = ()
    ) -> tuple[dict[str, Any], list[str]]:
        """Verified claims and scopes of the request's token."""
        token = _bearer_token(headers.get(self.header_name))
        claims = self._verify(token)
        scopes = str(claims.get("scope") or "").split()
        if required_scopes and not set(required_scopes) & set(scopes):
            raise Forbidden(f"token lacks one of the scopes {list(required_scopes)}")
        return claims, scopes

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = _jwks_cache.key(self.jwks_url, header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except (jwt.PyJWTError, KeyError, ValueError, OSError) as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        if not self._audience_ok(claims):
            raise Unauthorized("token audience is not the API's audience")
        return claims

    def _audience_ok(self, claims: dict[str, Any]) -> bool:
        aud = claims.get("aud")
        candidates = aud if isinstance(aud, list) else [aud] if aud else []
        if not candidates and claims.get("client_id"):  # Cognito access tokens carry client_id, not aud
            candidates = [claims["client_id"]]
        return any(a in self.audiences for a in candidates)


def _bearer_token(value: str | None) -> str:
    if not value:
        raise Unauthorized("no token")
    scheme, _, rest = value.strip().partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else value.strip()
    if not token:
        raise Unauthorized("empty token")
    return token


def local_jwks_url(issuer: str, aws_endpoint: str) -> str:
    """Where the local stack serves an issuer's JWKS: moto answers ``/{pool_id}/.well-known/jwks.json``."""
    parts = urlsplit(issuer)
    if parts.hostname and parts.hostname.startswith("cognito-idp.") and parts.hostname.endswith(".amazonaws.com"):
        return f"{aws_endpoint.rstrip('/')}{parts.path}/.well-known/jwks.json"
    return f"{issuer.rstrip('/')}/.well-known/jwks.json"


class _JwksCache:
    """Keys per JWKS URL, fetched once (moto's key never changes while it runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, PyJWK]] = {}

    def key(self, url: str, kid: str | None) -> Any:
        with self._lock:
            if url not in self._keys:
                self._keys[url] = self._fetch(url)
            keys = self._keys[url]
        if kid not in keys:
            raise KeyError(f"kid {kid!r} not in {url}")
        return keys[kid].key

    @staticmethod
    def _fetch(url: str) -> dict[str, PyJWK]:
        with urllib.request.urlopen(url, timeout=5) as response:
            document = json.load(response)
        return {k.get("kid"): PyJWK(k) for k in document.get("keys", [])}


_jwks_cache = _JwksCache()
