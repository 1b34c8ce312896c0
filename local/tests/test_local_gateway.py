"""The local HTTP gateway over real HTTP, against moto *server* (its JWKS), with an echo function from a test
template: routing, the JWT authorizer, the event the handler receives, response mapping, dev routes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
import requests

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


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalGateway]]:
    from moto.server import ThreadedMotoServer

    root: Path = tmp_path_factory.mktemp("gateway")
    (root / "echo").mkdir()
    (root / "echo" / "app.py").write_text(ECHO)
    (root / "template.yaml").write_text(GATEWAY_TEMPLATE)
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
        server = LocalHttpServer(("127.0.0.1", 0), local.handle)
        serve_in_thread(server, "test-gateway")
        local.ready.set()
        yield f"http://127.0.0.1:{server.port}", local
        server.shutdown()
        server.server_close()
    moto_server.stop()


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
