"""docs/openapi.json is generated from the /v1 handlers and the webhooks' declaration (``python -m local.openapi``):
it must match the code, document every route of template.yaml, and describe what the providers send."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import pytest

from local import REPO_ROOT, TEMPLATE_PATH
from local.openapi import OUTPUT, build, render
from local.template import load_template

EVENTS = REPO_ROOT / "events"


def test_committed_openapi_document_matches_the_code() -> None:
    expected = render(build())

    assert OUTPUT.exists(), "docs/openapi.json is missing: run `python -m local.openapi`"
    assert OUTPUT.read_text() == expected, "docs/openapi.json is stale: run `python -m local.openapi` and commit it"


def test_every_v1_route_is_documented_with_the_jwt_scheme() -> None:
    document = json.loads(OUTPUT.read_text())

    assert document["components"]["securitySchemes"]["cognitoJwt"]["scheme"] == "bearer"
    send = document["paths"]["/v1/conversations/{id}/messages"]["post"]
    assert send["security"] == [{"cognitoJwt": []}]
    assert {"201", "404", "409", "422", "502"} <= set(send["responses"])
    mapping = send["requestBody"]["content"]["application/json"]["schema"]["discriminator"]["mapping"]
    assert set(mapping) == {"text", "image", "document", "audio", "video", "template", "reaction", "read"}


def test_every_template_route_is_documented_and_nothing_else() -> None:
    document = json.loads(OUTPUT.read_text())
    documented = {(path, method) for path, item in document["paths"].items() for method in item}

    assert documented == {(r.path, r.method.lower()) for r in load_template(TEMPLATE_PATH).http_routes()}


def test_webhooks_document_their_forms_signatures_and_answers() -> None:
    paths = json.loads(OUTPUT.read_text())["paths"]
    twilio, status = paths["/webhooks/twilio"]["post"], paths["/webhooks/twilio/status"]["post"]
    verify, notify = paths["/webhooks/meta"]["get"], paths["/webhooks/meta"]["post"]

    for operation in (twilio, status, verify, notify):
        assert operation["security"] == []  # no JWT: the provider's signature
    for operation in (twilio, status):
        assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
            ("X-Twilio-Signature", "header", True)]
        assert list(operation["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
        assert set(operation["responses"]) == {"200", "400", "401", "404", "413", "500"}
        assert list(operation["responses"]["200"]["content"]) == ["text/xml"]
    assert [(p["name"], p["in"]) for p in verify["parameters"]] == [
        ("hub.mode", "query"), ("hub.verify_token", "query"), ("hub.challenge", "query")]
    assert set(verify["responses"]) == {"200", "403"}
    assert list(verify["responses"]["200"]["content"]) == ["text/plain"]
    assert [(p["name"], p["in"]) for p in notify["parameters"]] == [("X-Hub-Signature-256", "header")]
    assert list(notify["requestBody"]["content"]) == ["application/json"]
    assert set(notify["responses"]) == {"200", "400", "401", "413", "500"}
    for operation in (twilio, status, verify, notify):
        for code, answer in operation["responses"].items():
            if code != "200":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


WEBHOOK_SAMPLES = sorted(p.name for p in EVENTS.glob("*.json") if p.name.startswith(("twilio", "meta")))


@pytest.mark.parametrize("sample", WEBHOOK_SAMPLES)
def test_the_sample_webhooks_conform_to_the_documented_requests(sample: str) -> None:
    """The samples are what the providers send (events/README.md): the document must describe them."""
    document = json.loads(OUTPUT.read_text())
    event = json.loads((EVENTS / sample).read_text())
    method, path = event["routeKey"].split(" ", 1)
    operation = document["paths"][path][method.lower()]
    headers = {k.lower(): v for k, v in event["headers"].items()}
    query = event.get("queryStringParameters") or {}

    for parameter in operation.get("parameters", []):
        given = headers.get(parameter["name"].lower()) if parameter["in"] == "header" else query.get(parameter["name"])
        assert given is not None or not parameter["required"], parameter["name"]
        if given is not None:
            assert list(_validator(document, parameter["schema"]).iter_errors(given)) == [], parameter["name"]
    if "requestBody" in operation:
        raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
        (media_type, content), = operation["requestBody"]["content"].items()
        assert headers["content-type"].split(";")[0] == media_type
        body = dict(parse_qsl(raw.decode(), keep_blank_values=True)) if media_type.endswith("urlencoded") \
            else json.loads(raw)
        assert [e.message for e in _validator(document, content["schema"]).iter_errors(body)] == []


def test_a_request_the_handlers_refuse_does_not_conform() -> None:
    """The declaration is no catch-all: what the parsers refuse, the document refuses."""
    document = json.loads(OUTPUT.read_text())
    form = {"$ref": "#/components/schemas/TwilioInboundForm"}
    notification = {"$ref": "#/components/schemas/MetaNotification"}

    assert not _validator(document, form).is_valid({"AccountSid": "AC1", "From": "whatsapp:+14155550100",
                                                    "To": "whatsapp:+14155238886"})  # no MessageSid
    assert not _validator(document, form).is_valid({"MessageSid": "SM1", "AccountSid": "AC1", "From": "+1415555",
                                                    "To": "whatsapp:+14155238886"})  # not a WhatsApp address
    change = {"field": "messages", "value": {"metadata": {"phone_number_id": "not-digits"}}}
    assert not _validator(document, notification).is_valid(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]})
