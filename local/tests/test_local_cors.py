"""CORS and the console's security headers as the local stack reads them from the real template.yaml: the API
allows the console's CloudFront origin plus ``ConsoleExtraOrigins``, and the local console gets the CloudFront
response-headers policy with the local media host added."""

from __future__ import annotations

from local import TEMPLATE_PATH
from local.apigw import HttpRequest, HttpResponse
from local.console import security_headers, with_local_media
from local.cors import CorsPolicy, policy_from_template
from local.provision import Resources
from local.template import load_template


def resources(**parameters: str) -> Resources:
    return Resources(load_template(TEMPLATE_PATH), stage="local", parameters=parameters)


def test_api_allows_the_console_origin_only_by_default() -> None:
    local = resources()
    policy = policy_from_template(local)

    assert policy is not None
    domain = local.get_att("ConsoleDistribution", "DomainName")
    assert policy.allow_origins == (f"https://{domain}",)
    assert set(policy.allow_headers) >= {"authorization", "content-type", "idempotency-key"}
    assert set(policy.allow_methods) >= {"GET", "POST", "PATCH", "DELETE"}


def test_extra_origins_parameter_adds_origins() -> None:
    local = resources(ConsoleExtraOrigins="http://127.0.0.1:5173,https://ops.acme.example")
    policy = policy_from_template(local)

    assert policy is not None
    assert policy.allow_origins[1:] == ("http://127.0.0.1:5173", "https://ops.acme.example")


def test_integration_cors_headers_are_replaced() -> None:
    policy = CorsPolicy(allow_origins=("https://a.example",), expose_headers=("x-id",))
    request = HttpRequest(method="GET", path="/v1/x", headers=[("Origin", "https://a.example")])
    response = HttpResponse(200, [("access-control-allow-origin", "*"), ("content-type", "text/plain")], b"ok")

    decorated = policy.decorate(request, response)

    assert decorated.headers == [
        ("content-type", "text/plain"),
        ("access-control-allow-origin", "https://a.example"),
        ("access-control-expose-headers", "x-id"),
    ]


def test_a_request_without_origin_or_method_is_no_preflight() -> None:
    policy = CorsPolicy(allow_origins=("*",))

    assert policy.preflight(HttpRequest(method="OPTIONS", path="/v1/x", headers=[("Origin", "https://a")])) is None
    assert policy.preflight(HttpRequest(method="OPTIONS", path="/v1/x")) is None
    wildcard = policy.preflight(HttpRequest(method="OPTIONS", path="/v1/x", headers=[
        ("Origin", "https://a"), ("Access-Control-Request-Method", "GET")]))
    assert wildcard is not None and wildcard.header("access-control-allow-origin") == "*"


def test_console_gets_the_templates_security_headers_with_local_media() -> None:
    headers = dict(security_headers(resources(), "http://127.0.0.1:4566"))

    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert "http://127.0.0.1:4566" in directives["img-src"] and "http://127.0.0.1:4566" in directives["media-src"]
    assert "http://127.0.0.1:4566" not in directives["connect-src"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


def test_local_media_is_added_only_where_s3_is_allowed() -> None:
    csp = "default-src 'self'; img-src 'self' https://*.s3.amazonaws.com; script-src 'self'"

    assert with_local_media(csp, "http://m") == (
        "default-src 'self'; img-src 'self' https://*.s3.amazonaws.com http://m; script-src 'self'"
    )
