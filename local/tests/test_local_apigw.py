"""HTTP API payload 2.0 as API Gateway builds it (PROTOCOLS §13), routing, and response mapping."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from local.apigw import (
    HttpRequest,
    RouteMatch,
    Router,
    build_event,
    flatten_claims,
    is_text_content_type,
    map_response,
)
from local.template import RouteSpec, Template
from local.testing import ApiEvents, id_token_claims


def route(method: str, path: str, function_id: str = "Fn") -> RouteSpec:
    return RouteSpec(
        method=method, path=path, function_id=function_id, event_name=f"{method}{path}", api_id="Api", authorizer=None
    )


def event_for(request: HttpRequest, path_template: str = "/v1/things/{id}", **kwargs: Any) -> dict[str, Any]:
    match = Router([route(request.method, path_template)]).match(request.method, request.path)
    assert match is not None
    return build_event(request, match, **kwargs)


# ------------------------------------------------------------------------------------------------ request
def test_twilio_form_post_arrives_base64_encoded() -> None:
    form = b"From=whatsapp%3A%2B14155550100&Body=hello+there&NumMedia=0"
    request = HttpRequest(
        "POST", "/v1/things/1", headers=[("Content-Type", "application/x-www-form-urlencoded")], body=form
    )

    event = event_for(request)

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == form
    assert parse_qs(base64.b64decode(event["body"]).decode())["Body"] == ["hello there"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "text/xml",
        "application/xml",
        "application/javascript",
        "application/vnd.api+json",
    ],
)
def test_text_bodies_arrive_as_text(content_type: str) -> None:
    request = HttpRequest("POST", "/v1/things/1", headers=[("content-type", content_type)], body=b'{"a": 1}')

    event = event_for(request)

    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"a": 1}'


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "image/png", "multipart/form-data"])
def test_other_bodies_are_base64(content_type: str | None) -> None:
    assert not is_text_content_type(content_type)


def test_no_body_means_no_body_key() -> None:
    event = event_for(HttpRequest("GET", "/v1/things/1"))

    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_headers_lower_cased_duplicates_comma_joined_cookies_split_out() -> None:
    request = HttpRequest(
        "GET",
        "/v1/things/1",
        headers=[("X-Custom", "a"), ("x-custom", "b"), ("Cookie", "s=1; theme=dark"), ("User-Agent", "curl/8")],
    )

    event = event_for(request)

    assert event["headers"]["x-custom"] == "a,b"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "theme=dark"]
    assert event["requestContext"]["http"]["userAgent"] == "curl/8"
    assert all(k == k.lower() for k in event["headers"])


def test_query_string_raw_and_parsed_with_duplicates_joined() -> None:
    request = HttpRequest("GET", "/v1/things/1", query_string="limit=10&tag=a&tag=b&q=hello%20world&empty=")

    event = event_for(request)

    assert event["rawQueryString"] == "limit=10&tag=a&tag=b&q=hello%20world&empty="
    assert event["queryStringParameters"] == {"limit": "10", "tag": "a,b", "q": "hello world", "empty": ""}


def test_route_key_path_parameters_and_request_context() -> None:
    request = HttpRequest("POST", "/v1/things/ch_123", headers=[("host", "127.0.0.1:3000")], source_ip="10.0.0.9")

    event = event_for(request)

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/things/{id}"
    assert event["rawPath"] == "/v1/things/ch_123"
    assert event["pathParameters"] == {"id": "ch_123"}
    context = event["requestContext"]
    assert context["routeKey"] == "POST /v1/things/{id}"
    assert context["stage"] == "$default"
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/things/ch_123",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.9",
        "userAgent": "",
    }
    assert context["domainName"] == "127.0.0.1"
    assert isinstance(context["timeEpoch"], int) and context["requestId"]
    assert "authorizer" not in context  # a route without authorizer


def test_claims_are_flattened_like_the_jwt_authorizer() -> None:
    claims = id_token_claims("acme", groups=["admin", "ops"], email_verified=True)

    event = event_for(HttpRequest("GET", "/v1/things/1"), claims=claims)

    flat = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert flat["cognito:groups"] == "[admin ops]"
    assert flat["custom:tenant_id"] == "acme"
    assert flat["email_verified"] == "true"
    assert flat["exp"] == str(claims["exp"])
    assert all(isinstance(v, str) for v in flat.values())
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] is None


def test_flatten_claims_nested_values() -> None:
    assert flatten_claims({"a": [1, 2], "b": {"y": 1, "x": "s"}, "c": None, "d": 1.0}) == {
        "a": "[1 2]",
        "b": "map[x:s y:1]",
        "c": "",
        "d": "1",
    }


def test_powertools_reads_our_event() -> None:
    request = HttpRequest(
        "POST",
        "/v1/things/1",
        query_string="a=1",
        headers=[("content-type", "application/x-www-form-urlencoded")],
        body=b"Body=hi",
    )

    event = APIGatewayProxyEventV2(event_for(request, claims=id_token_claims("acme")))

    assert event.decoded_body == "Body=hi"
    assert event.path_parameters == {"id": "1"}
    assert event.request_context.authorizer.jwt_claim["custom:tenant_id"] == "acme"
    assert event.query_string_parameters == {"a": "1"}


def test_api_events_helper_routes_by_the_template(template: Template) -> None:
    events = ApiEvents(template)

    event = events("PATCH", "/v1/channels/ch_1", json={"name": "x"}, claims=id_token_claims())
    form = events("POST", "/webhooks/twilio", form={"Body": "hi"})

    assert event["routeKey"] == "PATCH /v1/channels/{id}"
    assert json.loads(event["body"]) == {"name": "x"}
    assert form["isBase64Encoded"] is True
    assert "authorizer" not in form["requestContext"]
    with pytest.raises(LookupError):
        events("GET", "/not/a/route")


# ------------------------------------------------------------------------------------------------ routing
def test_literal_segments_beat_parameters_and_exact_methods_beat_any() -> None:
    router = Router(
        [
            route("GET", "/v1/{kind}/{id}"),
            route("GET", "/v1/channels/{id}", "Channels"),
            route("ANY", "/v1/channels/{id}", "Any"),
            route("ANY", "/v1/{proxy+}", "Greedy"),
        ]
    )

    def target(method: str, path: str) -> str | None:
        match = router.match(method, path)
        return match.route.function_id if match else None

    assert target("GET", "/v1/channels/1") == "Channels"
    assert target("DELETE", "/v1/channels/1") == "Any"
    assert target("GET", "/v1/things/1") == "Fn"
    assert target("GET", "/v1/a/b/c") == "Greedy"
    assert target("GET", "/v2/x") is None
    greedy = router.match("POST", "/v1/a/b%20c")
    assert greedy is not None and greedy.path_parameters == {"proxy": "a/b c"}


def test_default_route_catches_the_rest() -> None:
    router = Router([route("GET", "/a"), route("ANY", "$default", "Default")])

    match = router.match("PUT", "/anything")

    assert isinstance(match, RouteMatch) and match.route.route_key == "$default"


# ------------------------------------------------------------------------------------------------ response
def test_full_response_with_headers_cookies_and_multi_value_headers() -> None:
    response = map_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"X-Many": ["1", "2"]},
            "cookies": ["a=1", "b=2; Secure"],
            "body": '{"ok": true}',
        }
    )

    assert response.status == 201
    assert response.header("content-type") == "application/json"
    assert [v for k, v in response.headers if k == "X-Many"] == ["1", "2"]
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2; Secure"]
    assert response.body == b'{"ok": true}'


def test_base64_response_body_is_decoded() -> None:
    response = map_response({"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True})

    assert response.body == b"\x89PNG"


def test_plain_values_become_json_200s() -> None:
    as_dict = map_response({"message": "hi"})
    as_str = map_response("Hello from Lambda!")

    assert (as_dict.status, json.loads(as_dict.body)) == (200, {"message": "hi"})
    assert as_dict.header("content-type") == "application/json"
    assert (as_str.status, as_str.body) == (200, b"Hello from Lambda!")


def test_malformed_status_code_is_a_500() -> None:
    assert map_response({"statusCode": "abc"}).status == 500
