"""events/: a sample for every function, made for the README's "Try it" values, and the SAM env-vars file.

The samples are invoked against a running stack by tests/e2e/test_sample_events.py; here, without a stack: which
function each one is for, that its signature verifies for the README's credentials, and what SAM CLI itself makes
of events/env.json.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from local import REPO_ROOT, TEMPLATE_PATH
from local.dev import QUICKSTART_CHANNELS, QUICKSTART_TOKEN_REQUEST
from local.env_vars import OUTPUT as ENV_FILE
from local.env_vars import declared_variables, document, local_document, render
from local.invoke import PLACEHOLDER, function_for_event, resolve_placeholders, signed_url_note
from local.template import Template
from local.testing import provisioned_moto, readme_try_it

EVENTS = REPO_ROOT / "events"
DEFAULT_URL = "http://127.0.0.1:3000"
SAM_PYTHON = REPO_ROOT / ".venv-tools" / "bin" / "python"


def samples() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json")) if p != ENV_FILE}


# ---------------------------------------------------------------------------------------------- which function
def test_every_function_has_a_sample_and_every_sample_a_function(template: Template) -> None:
    covered = {name: function_for_event(template, event).logical_id for name, event in samples().items()}

    assert set(covered.values()) == {f.logical_id for f in template.functions()}
    routes = {r.route_key for r in template.http_routes()}
    assert routes <= {event.get("routeKey") for event in samples().values()}, "a route without a sample"


def test_the_function_of_an_event_comes_from_its_route_or_its_stream(template: Template) -> None:
    assert function_for_event(template, {"routeKey": "GET /v1/channels"}).logical_id == "ChannelsApiFunction"
    stream = {"Records": [{"eventSource": "aws:dynamodb", "eventSourceARN": "arn:…:table/x/stream/1"}]}
    assert function_for_event(template, stream).logical_id == "InboundProcessorFunction"
    for unknown in ({"routeKey": "GET /nowhere"}, {"Records": [{"eventSource": "aws:sqs"}]}, {}):
        with pytest.raises(KeyError):
            function_for_event(template, unknown)


def test_placeholders_are_replaced_wherever_they_are() -> None:
    event = {"rawPath": "/v1/conversations/{{conversation:+14155550100}}/messages",
             "pathParameters": {"id": "{{conversation:+14155550100}}"}, "n": 1,
             "list": ["{{channel:+14155238886}}", "{{channel:+14155238886}}x"]}
    asked: list[tuple[str, str]] = []

    def lookup(kind: str, key: str) -> str:
        asked.append((kind, key))
        return f"{kind[:2]}_{key[-4:]}"

    assert resolve_placeholders(event, lookup) == {
        "rawPath": "/v1/conversations/co_0100/messages", "pathParameters": {"id": "co_0100"}, "n": 1,
        "list": ["ch_8886", "ch_8886x"]}
    assert set(asked) == {("conversation", "+14155550100"), ("channel", "+14155238886")}
    assert not PLACEHOLDER.search(json.dumps(resolve_placeholders(samples()["messages_send.json"], lookup)))


# ---------------------------------------------------------------------------------------------- the README's values
def test_the_readme_try_it_is_what_make_dev_prints() -> None:
    values = readme_try_it()

    assert values["token"] == json.loads(QUICKSTART_TOKEN_REQUEST)
    assert list(values["channels"].values()) == [json.loads(c) for c in QUICKSTART_CHANNELS]


def _form(event: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(base64.b64decode(event["body"]).decode(), keep_blank_values=True))


@pytest.mark.parametrize("name", ["twilio_inbound.json", "twilio_status.json"])
def test_twilio_samples_verify_for_the_readme_channel_at_the_default_url(name: str) -> None:
    channel = readme_try_it()["channels"]["twilio"]
    event = samples()[name]
    form = _form(event)
    url = DEFAULT_URL + event["rawPath"]

    assert RequestValidator(channel["auth_token"]).validate(url, form, event["headers"]["x-twilio-signature"])
    assert form["AccountSid"] == channel["account_sid"]
    ours = form["To"] if name == "twilio_inbound.json" else form["From"]
    assert ours == f"whatsapp:{channel['phone_number']}"
    assert signed_url_note(event, {"resources": {"env_overrides": {"PUBLIC_BASE_URL": DEFAULT_URL}}}) is None
    note = signed_url_note(event, {"resources": {"env_overrides": {"PUBLIC_BASE_URL": "http://127.0.0.1:3911"}}})
    assert note is not None and "local.sign_twilio" in note


@pytest.mark.parametrize("name", ["meta_text.json", "meta_image.json", "meta_statuses.json"])
def test_meta_samples_are_signed_with_the_readme_app_secret(name: str) -> None:
    channel = readme_try_it()["channels"]["meta"]
    event = samples()[name]
    body = event["body"].encode()
    expected = "sha256=" + hmac.new(channel["app_secret"].encode(), body, hashlib.sha256).hexdigest()

    assert hmac.compare_digest(event["headers"]["x-hub-signature-256"], expected)
    assert event["headers"]["content-length"] == str(len(body))
    numbers = {c["value"]["metadata"]["phone_number_id"] for e in json.loads(body)["entry"] for c in e["changes"]}
    assert numbers == {channel["phone_number_id"]}


def test_meta_verification_sample_uses_the_readme_verify_token() -> None:
    query = samples()["meta_verify.json"]["queryStringParameters"]

    assert query["hub.verify_token"] == readme_try_it()["channels"]["meta"]["verify_token"]


def test_api_samples_are_the_readme_tenant() -> None:
    tenant = readme_try_it()["token"]["tenant_id"]
    for name, event in samples().items():
        claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims")
        if event.get("rawPath", "").startswith("/v1/"):
            assert claims is not None and claims["custom:tenant_id"] == tenant, name
            assert claims["cognito:groups"] == "[admin]", name  # flattened as the JWT authorizer does


# ---------------------------------------------------------------------------------------------- env.json
def test_env_file_is_generated_from_the_template() -> None:
    assert ENV_FILE.read_text() == render(local_document()), "stale: run `python -m local.env_vars`"


def test_env_file_names_every_function_and_every_variable_to_provide(template: Template) -> None:
    doc = json.loads(ENV_FILE.read_text())

    assert set(doc) == {f.logical_id for f in template.functions()} | {"Parameters"}
    for function in template.functions():
        given = {**doc["Parameters"], **doc[function.logical_id]}
        to_provide = {name for name, needs in declared_variables(template, function.logical_id).items() if needs}
        assert to_provide == set(given), function.logical_id


def test_env_file_gives_what_the_local_stack_gives(template: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provisioned as `make dev` provisions (local.provision), every value is the one the stack's functions get."""
    import boto3

    with provisioned_moto(template, monkeypatch, stage="local",
                          parameters={"PublicBaseUrl": DEFAULT_URL}) as resources:
        resources.env_overrides = {"PUBLIC_BASE_URL": DEFAULT_URL}
        doc = document(resources)
        kms = boto3.client("kms")
        for function in template.functions():
            env = resources.function_env(function.logical_id)
            given = {**doc["Parameters"], **doc[function.logical_id]}
            for name, value in given.items():
                if name == "CREDENTIALS_KEY_ID":  # the alias names the very key the stack uses
                    assert kms.describe_key(KeyId=value)["KeyMetadata"]["KeyId"] == env[name]
                else:
                    assert value == env[name], (function.logical_id, name)


def test_sam_cli_gives_every_function_its_whole_environment_from_the_env_file(template: Template) -> None:
    """SAM CLI's own code (the one `sam local invoke --env-vars` runs) resolves each function's variables."""
    script = (
        "import json, sys\n"
        "from samcli.commands.local.lib.local_lambda import LocalLambdaRunner\n"
        "from samcli.lib.providers.sam_function_provider import SamFunctionProvider\n"
        "from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider\n"
        "stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1])\n"
        "provider = SamFunctionProvider(stacks)\n"
        "runner = LocalLambdaRunner(local_runtime=None, function_provider=provider, cwd='.', real_path='.',\n"
        "                           env_vars_values=json.load(open(sys.argv[2])))\n"
        "print(json.dumps({f.name: runner._make_env_vars(f).resolve() for f in provider.get_all()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0"}
    assert SAM_PYTHON.exists(), "SAM CLI is installed by `make deps` into .venv-tools"
    run = subprocess.run([str(SAM_PYTHON), "-c", script, str(TEMPLATE_PATH), str(ENV_FILE)], env=env,  # noqa: S603
                         capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False)
    assert run.returncode == 0, run.stderr
    resolved = json.loads(run.stdout)
    doc = json.loads(ENV_FILE.read_text())

    assert set(resolved) == {f.logical_id for f in template.functions()}
    for function in template.functions():
        given = {**doc["Parameters"], **doc[function.logical_id]}
        sam = resolved[function.logical_id]
        for name, literal in ((n, not needs) for n, needs in declared_variables(template, function.logical_id).items()):
            expected = function.environment[name] if literal else given[name]
            assert sam[name] == str(expected), (function.logical_id, name)
