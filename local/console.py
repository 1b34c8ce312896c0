"""The web console in ``make dev`` (docs/console.md): its files at ``/``, its ``config.json``, the dev-only routes it
signs in through, and the demo login ``make dev`` prints.

- ``GET /config.json``: the runtime configuration that ``local/publish_console.py`` writes to S3 in AWS, here
  pointing at the local pool, the same-origin API and the Cognito pass-through below, with
  ``USER_PASSWORD_AUTH``: moto's SRP accepts any password proof, so a wrong password would sign in.
- ``POST /_local/cognito``: Cognito's public JSON API (``InitiateAuth``, ``RespondToAuthChallenge``) passed to moto
  unchanged, so the console speaks to it exactly as it speaks to ``cognito-idp.<region>.amazonaws.com``. Nothing
  else gets through (moto would run admin calls unsigned).
- ``POST /_local/users`` ``{"email","password","tenant_id","admin"}`` → 201 ``{"email","tenant_id","admin"}``;
  409 when the email exists, 422 when the password misses the pool's policy, 400 for a malformed body.
- Every console answer carries the security headers of the template's CloudFront response-headers policy, with the
  local media host (moto's presigned URLs) added where the policy names S3, so the browser tests run the
  production CSP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from local import REPO_ROOT
from local.apigw import HttpRequest, HttpResponse, json_response
from local.identity import LocalIdentity, PasswordPolicyError, TokenRequestError, UserExistsError
from local.provision import Resources
from local.static import StaticSite

CONSOLE_DIST = REPO_ROOT / "web" / "dist"
BUILD_HINT = "run `make deps` (or: cd web && npm ci && npm run build)"
HEADERS_POLICY_TYPE = "AWS::CloudFront::ResponseHeadersPolicy"
LOCAL_AUTH_FLOW = "USER_PASSWORD_AUTH"
COGNITO_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
# What a browser may ask the local pool: sign-in with a password, token refresh, and a first password change.
COGNITO_FLOWS = {"InitiateAuth": {"USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"}}
COGNITO_CHALLENGES = {"RespondToAuthChallenge": {"NEW_PASSWORD_REQUIRED"}}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

DEMO_EMAIL = "demo@acme.example"
DEMO_PASSWORD = "Demo-console-1"  # local pool only; printed by `make dev`
DEMO_TENANT = "acme"

if TYPE_CHECKING:
    from local.http_gateway import LocalGateway

DevRoute = Callable[[HttpRequest], HttpResponse]


# ---------------------------------------------------------------------------------------------- config + headers
def console_config(resources: Resources, identity: LocalIdentity, stage: str) -> dict[str, Any]:
    return {
        "region": resources.region,
        "user_pool_id": identity.user_pool_id,
        "client_id": identity.client_id,
        "api_url": "",
        "auth_flow": LOCAL_AUTH_FLOW,
        "cognito_endpoint": "/_local/cognito",
        "stage": stage,
    }


def security_headers(resources: Resources, media_origin: str) -> list[tuple[str, str]]:
    """The template's response-headers policy as headers; S3 sources in the CSP also allow ``media_origin``."""
    headers: list[tuple[str, str]] = []
    for logical_id in resources.template.resources_of_type(HEADERS_POLICY_TYPE):
        properties = resources.resolve(resources.template.resources[logical_id]["Properties"])
        config = properties["ResponseHeadersPolicyConfig"]
        security = config.get("SecurityHeadersConfig") or {}
        csp = (security.get("ContentSecurityPolicy") or {}).get("ContentSecurityPolicy")
        if csp:
            headers.append(("content-security-policy", with_local_media(csp, media_origin)))
        if security.get("ContentTypeOptions"):
            headers.append(("x-content-type-options", "nosniff"))
        frame = (security.get("FrameOptions") or {}).get("FrameOption")
        if frame:
            headers.append(("x-frame-options", frame))
        referrer = (security.get("ReferrerPolicy") or {}).get("ReferrerPolicy")
        if referrer:
            headers.append(("referrer-policy", referrer))
    return headers


def with_local_media(csp: str, media_origin: str) -> str:
    directives = []
    for directive in csp.split(";"):
        words = directive.split()
        if any(".s3." in word for word in words[1:]):  # a directive that allows S3 (presigned media URLs)
            words.append(media_origin)
        directives.append(" ".join(words))
    return "; ".join(d for d in directives if d)


def console_site(
    resources: Resources, identity: LocalIdentity, *, stage: str, media_origin: str, root: Path = CONSOLE_DIST
) -> StaticSite:
    config = json.dumps(console_config(resources, identity, stage)).encode()
    return StaticSite(
        root,
        generated={"/config.json": lambda: (config, "application/json")},
        headers=security_headers(resources, media_origin),
        missing_hint=BUILD_HINT,
    )


# ---------------------------------------------------------------------------------------------- dev routes
def _error(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


def users_route(identity: LocalIdentity) -> DevRoute:
    def create(request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "bad_request", "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "bad_request", "the body must be a JSON object")
        email, password, tenant_id = body.get("email"), body.get("password"), body.get("tenant_id")
        admin = body.get("admin", False)
        if not isinstance(email, str) or not EMAIL.match(email):
            return _error(400, "bad_request", "email must be an email address")
        if not isinstance(password, str) or not password:
            return _error(400, "bad_request", "password must be a non-empty string")
        if tenant_id is not None and not isinstance(tenant_id, str):
            return _error(400, "bad_request", "tenant_id must be a string")
        if not isinstance(admin, bool):
            return _error(400, "bad_request", "admin must be true or false")
        try:
            identity.create_user(email, password, tenant_id, admin)
        except UserExistsError as exc:
            return _error(409, "user_exists", str(exc))
        except PasswordPolicyError as exc:
            return _error(422, "invalid_password", str(exc))
        except TokenRequestError as exc:
            return _error(400, "bad_request", str(exc))
        return json_response(201, {"email": email, "tenant_id": tenant_id, "admin": admin})

    return create


def cognito_route(moto_url: str) -> DevRoute:
    session = requests.Session()

    def forward(request: HttpRequest) -> HttpResponse:
        target = next((v for k, v in request.headers if k.lower() == "x-amz-target"), "")
        action = target.removeprefix(COGNITO_TARGET_PREFIX)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _cognito_error("SerializationException", "the body must be JSON")
        allowed = (
            (action in COGNITO_FLOWS and body.get("AuthFlow") in COGNITO_FLOWS[action])
            or (action in COGNITO_CHALLENGES and body.get("ChallengeName") in COGNITO_CHALLENGES[action])
        ) and target.startswith(COGNITO_TARGET_PREFIX)
        if not allowed:
            what = body.get("AuthFlow") or body.get("ChallengeName") or ""
            return _cognito_error(
                "InvalidParameterException",
                f"the local pool answers {LOCAL_AUTH_FLOW}, token refresh and NEW_PASSWORD_REQUIRED only, "
                f"not {action} {what}".strip(),
            )
        answer = session.post(
            f"{moto_url}/",
            data=request.body,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
            timeout=10,
        )
        return HttpResponse(
            answer.status_code, [("content-type", "application/x-amz-json-1.1")], answer.content
        )

    return forward


def _cognito_error(kind: str, message: str) -> HttpResponse:
    body = json.dumps({"__type": kind, "message": message}).encode()
    return HttpResponse(400, [("content-type", "application/x-amz-json-1.1")], body)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    tenant_id: str


def create_demo_user(identity: LocalIdentity) -> DemoLogin:
    identity.create_user(DEMO_EMAIL, DEMO_PASSWORD, DEMO_TENANT, admin=True)
    return DemoLogin(DEMO_EMAIL, DEMO_PASSWORD, DEMO_TENANT)


def register(gateway: LocalGateway, *, stage: str, moto_url: str, root: Path = CONSOLE_DIST) -> DemoLogin | None:
    """Console routes and files (``root``) on a ``LocalGateway``, and the demo user; None without a user pool."""
    identity = gateway.identity
    if identity is None:
        return None
    gateway.add_dev_route("POST", "/_local/users", users_route(identity))
    gateway.add_dev_route("POST", "/_local/cognito", cognito_route(moto_url))
    site = console_site(gateway.resources, identity, stage=stage, media_origin=moto_url, root=root)
    gateway.fallback = site.handle
    return create_demo_user(identity)
