"""The local stack's own contract (DESIGN §6): health, tokens from the local Cognito, routing, the JWT check,
clean shutdown. Needs no handler code: everything here is answered before a function runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from jwt import PyJWK
from moto.utilities.utils import load_resource

from local import REPO_ROOT, TEMPLATE_PATH
from local.template import load_template
from local.testing import ApiEvents, LocalStackClient, id_token_claims, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


def unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def sign_with_local_cognito_key(claims: dict[str, Any]) -> str:
    """A token signed by the key moto's Cognito signs with: valid signature, so only the claims can fail."""
    key = PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": key.key_id})


def test_health_answers_ok(local_stack: LocalStackClient) -> None:
    response = requests.get(f"{local_stack.base_url}/_local/health", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_admin_token_carries_tenant_and_admin_group(local_stack: LocalStackClient) -> None:
    claims = unverified(local_stack.token(tenant_id="acme", admin=True))

    assert claims["custom:tenant_id"] == "acme"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["token_use"] == "id"
    assert claims["aud"] == local_stack.state["user_pool_client_id"]
    assert claims["iss"].endswith("/" + local_stack.state["user_pool_id"])


def test_member_token_has_no_admin_group(local_stack: LocalStackClient) -> None:
    claims = unverified(local_stack.token(tenant_id="acme", admin=False))

    assert claims["custom:tenant_id"] == "acme"
    assert "admin" not in claims.get("cognito:groups", [])


def test_token_without_tenant_has_no_tenant_claim(local_stack: LocalStackClient) -> None:
    claims = unverified(local_stack.token(tenant_id=None, admin=True))

    assert "custom:tenant_id" not in claims


def test_each_tenant_and_role_is_a_different_user(local_stack: LocalStackClient) -> None:
    combos = [("acme", True), ("acme", False), ("globex", True), (None, True), (None, False)]
    subjects = {unverified(local_stack.token(tenant_id=t, admin=a))["sub"] for t, a in combos}

    assert len(subjects) == len(combos)
    # ...and asking again gives the same user back
    assert unverified(local_stack.token("acme", True))["sub"] in subjects


def test_token_request_with_bad_body_is_400(local_stack: LocalStackClient) -> None:
    response = local_stack.http.post(f"{local_stack.base_url}/_local/token", data="{nope", timeout=5)

    assert response.status_code == 400


def test_route_not_in_template_is_404(local_stack: LocalStackClient) -> None:
    # Other GETs outside /v1, /webhooks and /_local are the web console's (its client routes: docs/console.md).
    for method, path in [("GET", "/v1/nope"), ("POST", "/nope"), ("GET", "/webhooks/nope"), ("DELETE", "/v1/channels"),
                         ("GET", "/v1/channels/a/b/c")]:
        response = local_stack.request(method, path, token=local_stack.token())
        assert response.status_code == 404, (method, path)
        assert response.json() == {"message": "Not Found"}


@pytest.mark.parametrize("path", ["/v1/channels", "/v1/conversations", "/v1/conversations/c1/messages"])
def test_v1_route_without_token_is_401(local_stack: LocalStackClient, path: str) -> None:
    response = local_stack.request("GET", path)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def _claims(local_stack: LocalStackClient, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    pool = local_stack.state["user_pool_id"]
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool}",
        "aud": local_stack.state["user_pool_client_id"],
        "sub": "forged",
        "token_use": "id",
        "custom:tenant_id": "acme",
        "cognito:groups": ["admin"],
        "iat": now - 60,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "token_factory",
    [
        pytest.param(lambda s: "garbage", id="garbage"),
        pytest.param(lambda s: "Bearer", id="empty-bearer"),
        pytest.param(lambda s: s.token()[:-8] + "AAAAAAAA", id="bad-signature"),
        pytest.param(lambda s: sign_with_local_cognito_key(_claims(s, exp=int(time.time()) - 10)), id="expired"),
        pytest.param(lambda s: sign_with_local_cognito_key(_claims(s, aud="someone-else")), id="wrong-audience"),
        pytest.param(
            lambda s: sign_with_local_cognito_key(
                _claims(s, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")
            ),
            id="wrong-issuer",
        ),
        pytest.param(lambda s: sign_with_local_cognito_key(_claims(s, exp=None)), id="no-exp"),
    ],
)
def test_v1_route_with_invalid_token_is_401(local_stack: LocalStackClient, token_factory: Any) -> None:
    token = token_factory(local_stack)

    response = local_stack.request("GET", "/v1/channels", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_forged_but_well_signed_token_with_right_claims_passes_the_authorizer(local_stack: LocalStackClient) -> None:
    # Control for the 401 cases above: the same construction with valid claims gets past the gateway.
    token = sign_with_local_cognito_key(_claims(local_stack))

    response = local_stack.request("GET", "/v1/channels", token=token)

    assert response.status_code != 401


def test_token_accepted_without_bearer_prefix(local_stack: LocalStackClient) -> None:
    response = local_stack.request("GET", "/v1/channels", headers={"Authorization": local_stack.token()})

    assert response.status_code != 401


def test_state_file_describes_the_running_stack(local_stack: LocalStackClient) -> None:
    state = local_stack.state

    assert state["gateway_url"] == local_stack.base_url
    assert set(state["tables"]) >= {"ChannelsTable", "ConversationsTable", "MessagesTable", "IdempotencyTable"}
    assert state["env"]["PUBLIC_BASE_URL"] == local_stack.base_url
    assert state["env"]["TWILIO_API_BASE_URL"] == state["sandbox_url"]
    assert state["env"]["META_GRAPH_BASE_URL"] == state["sandbox_url"]
    assert state["env"]["MEDIA_ALLOWED_HOSTS"] == "127.0.0.1,localhost"


def test_sigint_stops_the_stack_quickly(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    started = time.monotonic()

    code = stack.stop(signal.SIGINT)

    assert code == 0, stack.output()
    assert time.monotonic() - started < 10
    assert "Local stack stopped." in stack.output()
    assert not stack.state_path.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.base_url}/_local/health", timeout=2)


def test_invoke_runs_a_handler_against_the_running_stack(local_stack: LocalStackClient, tmp_path: Path) -> None:
    # Given a channel created over HTTP for a fresh tenant
    tenant = f"invoke-{int(time.time() * 1000)}"
    created = local_stack.request(
        "POST",
        "/v1/channels",
        token=local_stack.token(tenant),
        json={
            "provider": "twilio",
            "name": "Main",
            "phone_number": f"+1415{int(time.time() * 1000) % 10**7:07d}",
            "account_sid": "AC" + "a" * 32,
            "auth_token": "secret-token",
        },
    )
    assert created.status_code == 201, created.text
    # When the list handler is invoked directly with an event file, by directory name
    event = ApiEvents(load_template(TEMPLATE_PATH))("GET", "/v1/channels", claims=id_token_claims(tenant))
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    result = subprocess.run(
        [sys.executable, "-m", "local.invoke", "channels_api", str(event_file)],
        cwd=REPO_ROOT,
        env={**os.environ, "LOCAL_STATE_FILE": str(local_stack.stack.state_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it sees the running stack's data
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert [c["id"] for c in json.loads(response["body"])["items"]] == [created.json()["id"]]


def test_invoke_without_a_running_stack_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local.invoke", "channels_api", str(tmp_path / "event.json")],
        cwd=REPO_ROOT,
        env={**os.environ, "LOCAL_STATE_FILE": str(tmp_path / "none.json")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "make dev" in result.stderr
