"""The local HTTP gateway over real HTTP, against moto *server* (its JWKS), with an echo function from a test
template: routing, the JWT authorizer, the event the handler receives, response mapping, dev routes; and with the
web console registered (local/console.py): its files, config.json, users, the Cognito pass-through, CORS."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
import requests

from local import console
from local.http_gateway import LocalGateway, LocalHttpServer, serve_in_thread
from local.identity import LocalIdentity
from local.provision import provision
from local.runtime import FunctionRuntime
from local.template import load_template
from local.testing import FAKE_AWS_ENV

GATEWAY_TEMPLATE = """
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UsernameAttributes: [email]
      Schema: [{Name: tenant_id, AttributeDataType: String, Mutable: false}]
  PoolClient:
    Type: AWS::Cognito::UserPoolClient
    Properties: {UserPoolId: !Ref Pool, ReadAttributes: [email, "custom:tenant_id"]}
  Admins:
    Type: AWS::Cognito::UserPoolGroup
    Properties: {UserPoolId: !Ref Pool, GroupName: admin}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Sub "https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}"
              audience: [!Ref PoolClient]
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Events:
        Secure: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/v1/echo/{id}", Method: GET}}
        Hook:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /hooks/form, Method: POST, Auth: {Authorizer: NONE}}
        Boom:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /hooks/boom, Method: GET, Auth: {Authorizer: NONE}}
"""

ECHO = """
import json

def handler(event, context):
    if event["rawPath"] == "/hooks/boom":
        raise RuntimeError("boom")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-function": context.function_name},
        "cookies": ["seen=1"],
        "body": json.dumps(event),
    }
"""


@contextlib.contextmanager
def serve_gateway(root: Path, template_text: str, site: Path | None = None) -> Iterator[tuple[str, LocalGateway]]:
    """The template's gateway on a free port against a fresh moto server; with ``site``, the console on it too."""
    from moto.server import ThreadedMotoServer

    (root / "echo").mkdir()
    (root / "echo" / "app.py").write_text(ECHO)
    (root / "template.yaml").write_text(template_text)
    template = load_template(root / "template.yaml")

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
            mp.setenv(name, value)
        session = boto3.session.Session()
        resources = provision(session, template, "gw")
        identity = LocalIdentity(session.client("cognito-idp"), resources.ref("Pool"), resources.ref("PoolClient"))
        local = LocalGateway(resources, FunctionRuntime(resources), aws_endpoint=endpoint, identity=identity)
        if site is not None:
            console.register(local, stage="gw", moto_url=endpoint, root=site)
        server = LocalHttpServer(("127.0.0.1", 0), local.handle)
        serve_in_thread(server, "test-gateway")
        local.ready.set()
        yield f"http://127.0.0.1:{server.port}", local
        server.shutdown()
        server.server_close()
    moto_server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalGateway]]:
    with serve_gateway(tmp_path_factory.mktemp("gateway"), GATEWAY_TEMPLATE) as served:
        yield served


def token(base: str, **body: Any) -> str:
    response = requests.post(f"{base}/_local/token", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["id_token"])


def test_health(gateway: tuple[str, LocalGateway]) -> None:
    base, local = gateway

    assert requests.get(f"{base}/_local/health", timeout=5).json() == {"status": "ok"}
    local.ready.clear()
    try:
        assert requests.get(f"{base}/_local/health", timeout=5).status_code == 503
    finally:
        local.ready.set()


def test_authorized_request_reaches_the_handler_with_flattened_claims(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    response = requests.get(
        f"{base}/v1/echo/ch_1?limit=5&tag=a&tag=b",
        headers={"Authorization": f"Bearer {token(base, tenant_id='acme', admin=True)}", "X-Dup": "1"},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.headers["x-function"] == "gw-Echo"
    assert response.cookies.get("seen") == "1"
    event = response.json()
    assert event["routeKey"] == "GET /v1/echo/{id}"
    assert event["pathParameters"] == {"id": "ch_1"}
    assert event["queryStringParameters"] == {"limit": "5", "tag": "a,b"}
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["custom:tenant_id"] == "acme"
    assert claims["cognito:groups"] == "[admin]"
    assert all(isinstance(v, str) for v in claims.values())


def test_missing_or_bad_token_is_401_and_the_handler_does_not_run(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway
    good = token(base, tenant_id="acme", admin=False)
    payload = jwt.decode(good, options={"verify_signature": False})
    tampered_payload = (
        base64.urlsafe_b64encode(json.dumps({**payload, "custom:tenant_id": "evil"}).encode()).rstrip(b"=").decode()
    )
    header, _, signature = good.split(".")

    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"{header}.{tampered_payload}.{signature}"},
    ):
        response = requests.get(f"{base}/v1/echo/1", headers=headers, timeout=10)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


def test_tokens_differ_per_tenant_and_role(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    def subject(**body: Any) -> str:
        return str(jwt.decode(token(base, **body), options={"verify_signature": False})["sub"])

    subjects = {subject(tenant_id="a", admin=True), subject(tenant_id="a", admin=False), subject(admin=True)}

    assert len(subjects) == 3
    no_tenant = jwt.decode(token(base, admin=False), options={"verify_signature": False})
    assert "custom:tenant_id" not in no_tenant and "cognito:groups" not in no_tenant


def test_unauthenticated_route_gets_the_form_body_base64(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    response = requests.post(f"{base}/hooks/form", data={"Body": "hi there", "From": "whatsapp:+1"}, timeout=10)

    event = response.json()
    assert "authorizer" not in event["requestContext"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"Body=hi+there&From=whatsapp%3A%2B1"
    assert event["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_handler_exception_is_a_500(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    response = requests.get(f"{base}/hooks/boom", timeout=10)

    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_unknown_route_or_method_is_404(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    for method, path in [("GET", "/nope"), ("POST", "/v1/echo/1"), ("GET", "/hooks/form")]:
        response = requests.request(method, f"{base}{path}", timeout=10)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (method, path)


def test_bad_token_request_is_400(gateway: tuple[str, LocalGateway]) -> None:
    base, _ = gateway

    assert requests.post(f"{base}/_local/token", data="[1]", timeout=10).status_code == 400
    assert requests.post(f"{base}/_local/token", json={"tenant_id": "x" * 65}, timeout=10).status_code == 400


# ---------------------------------------------------------------------------------------------- the console
CONSOLE_ORIGIN = "https://console.example"
CONSOLE_TEMPLATE = GATEWAY_TEMPLATE.replace(
    "  Api:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n",
    "  Api:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n"
    "      CorsConfiguration:\n"
    f"        AllowOrigins: [{CONSOLE_ORIGIN}]\n"
    "        AllowHeaders: [authorization, content-type]\n"
    "        AllowMethods: [GET, POST]\n"
    "        MaxAge: 300\n",
)
COGNITO = "AWSCognitoIdentityProviderService."


@pytest.fixture(scope="module")
def console_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalGateway]]:
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text("<!doctype html><title>console</title>")
    with serve_gateway(tmp_path_factory.mktemp("console-gateway"), CONSOLE_TEMPLATE, site=site) as served:
        yield served


def cognito(base: str, action: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{base}/_local/cognito",
        data=json.dumps(body),
        headers={"X-Amz-Target": COGNITO + action, "Content-Type": "application/x-amz-json-1.1"},
        timeout=10,
    )


def sign_in(base: str, email: str, password: str) -> requests.Response:
    client_id = requests.get(f"{base}/config.json", timeout=5).json()["client_id"]
    return cognito(base, "InitiateAuth", {
        "ClientId": client_id,
        "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": email, "PASSWORD": password},
    })


def test_console_config_points_at_the_local_pool(console_gateway: tuple[str, LocalGateway]) -> None:
    base, local = console_gateway

    response = requests.get(f"{base}/config.json", timeout=5)

    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    assert local.identity is not None
    assert response.json() == {
        "region": "us-east-1",
        "user_pool_id": local.identity.user_pool_id,
        "client_id": local.identity.client_id,
        "api_url": "",
        "auth_flow": "USER_PASSWORD_AUTH",
        "cognito_endpoint": "/_local/cognito",
        "stage": "gw",
    }


def test_console_pages_do_not_shadow_the_api(console_gateway: tuple[str, LocalGateway]) -> None:
    base, _ = console_gateway

    for path in ("/", "/inbox", "/channels/ch_1"):
        response = requests.get(f"{base}{path}", timeout=5)
        assert (response.status_code, response.headers["content-type"]) == (200, "text/html; charset=utf-8"), path
    for method, path in [("GET", "/v1/nope"), ("GET", "/webhooks/nope"), ("GET", "/_local/nope"), ("POST", "/")]:
        response = requests.request(method, f"{base}{path}", timeout=5)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (method, path)
    assert requests.get(f"{base}/v1/echo/1", timeout=5).status_code == 401  # the route, not a page


def test_created_user_signs_in_and_the_api_takes_the_id_token(console_gateway: tuple[str, LocalGateway]) -> None:
    base, _ = console_gateway
    body = {"email": "ops@beta.example", "password": "Beta-pass-123", "tenant_id": "beta", "admin": True}

    created = requests.post(f"{base}/_local/users", json=body, timeout=10)
    signed_in = sign_in(base, "ops@beta.example", "Beta-pass-123")

    assert created.status_code == 201
    assert created.json() == {"email": "ops@beta.example", "tenant_id": "beta", "admin": True}
    assert signed_in.status_code == 200, signed_in.text
    id_token = signed_in.json()["AuthenticationResult"]["IdToken"]
    event = requests.get(f"{base}/v1/echo/1", headers={"Authorization": f"Bearer {id_token}"}, timeout=10).json()
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["custom:tenant_id"], claims["cognito:groups"], claims["email"]) == ("beta", "[admin]", body["email"])
    refreshed = cognito(base, "InitiateAuth", {
        "ClientId": requests.get(f"{base}/config.json", timeout=5).json()["client_id"],
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "AuthParameters": {"REFRESH_TOKEN": signed_in.json()["AuthenticationResult"]["RefreshToken"]},
    })
    assert refreshed.status_code == 200 and refreshed.json()["AuthenticationResult"]["IdToken"]


def test_user_creation_refuses_duplicates_weak_passwords_and_bad_bodies(
    console_gateway: tuple[str, LocalGateway],
) -> None:
    base, _ = console_gateway
    good = {"email": "member@beta.example", "password": "Member-pass-1", "tenant_id": "beta", "admin": False}

    assert requests.post(f"{base}/_local/users", json=good, timeout=10).status_code == 201
    duplicate = requests.post(f"{base}/_local/users", json=good, timeout=10)
    weak_body = {**good, "email": "weak@beta.example", "password": "abc"}
    weak = requests.post(f"{base}/_local/users", json=weak_body, timeout=10)

    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "user_exists")
    assert (weak.status_code, weak.json()["error"]["code"]) == (422, "invalid_password")
    no_user = sign_in(base, "weak@beta.example", "abc").json()["__type"]
    assert no_user in ("UserNotFoundException", "NotAuthorizedException")
    for bad in ("[1]", "{", json.dumps({**good, "email": "nope"}), json.dumps({**good, "admin": "yes"}),
                json.dumps({**good, "password": 5}), json.dumps({**good, "tenant_id": "x" * 65})):
        assert requests.post(f"{base}/_local/users", data=bad, timeout=10).status_code == 400, bad


def test_demo_user_exists_and_a_wrong_password_is_refused(console_gateway: tuple[str, LocalGateway]) -> None:
    base, _ = console_gateway

    assert sign_in(base, console.DEMO_EMAIL, console.DEMO_PASSWORD).status_code == 200
    wrong = sign_in(base, console.DEMO_EMAIL, "Not-the-password-1")
    assert (wrong.status_code, wrong.json()["__type"]) == (400, "NotAuthorizedException")


def test_cognito_pass_through_lets_only_sign_in_calls_through(console_gateway: tuple[str, LocalGateway]) -> None:
    base, _ = console_gateway
    client_id = requests.get(f"{base}/config.json", timeout=5).json()["client_id"]

    srp = cognito(base, "InitiateAuth", {"ClientId": client_id, "AuthFlow": "USER_SRP_AUTH",
                                         "AuthParameters": {"USERNAME": console.DEMO_EMAIL, "SRP_A": "ab"}})
    admin = cognito(base, "AdminCreateUser", {"UserPoolId": "x", "Username": "mallory@example.com"})
    challenge = cognito(base, "RespondToAuthChallenge", {"ClientId": client_id, "ChallengeName": "PASSWORD_VERIFIER"})

    for refused in (srp, admin, challenge):
        assert (refused.status_code, refused.json()["__type"]) == (400, "InvalidParameterException")


def test_cors_preflight_and_responses_follow_the_template(console_gateway: tuple[str, LocalGateway]) -> None:
    base, _ = console_gateway
    preflight = {"Origin": CONSOLE_ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}

    allowed = requests.options(f"{base}/v1/echo/1", headers=preflight, timeout=5)
    other = requests.options(f"{base}/v1/echo/1", headers={**preflight, "Origin": "https://evil.example"}, timeout=5)
    answered = requests.get(f"{base}/v1/echo/1", headers={"Origin": CONSOLE_ORIGIN}, timeout=5)
    foreign = requests.get(f"{base}/v1/echo/1", headers={"Origin": "https://evil.example"}, timeout=5)

    assert allowed.status_code == 204  # before the authorizer: no token needed
    assert allowed.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    assert allowed.headers["access-control-allow-methods"] == "GET,POST"
    assert allowed.headers["access-control-allow-headers"] == "authorization,content-type"
    assert allowed.headers["access-control-max-age"] == "300"
    assert other.status_code == 204 and "access-control-allow-origin" not in other.headers
    assert answered.status_code == 401 and answered.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
    assert "access-control-allow-origin" not in foreign.headers
