"""docs/openapi.json is generated from the /v1 handlers (``python -m local.openapi``): it must match the code."""

from __future__ import annotations

import json

from local.openapi import OUTPUT, build, render


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
