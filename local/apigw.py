"""What API Gateway HTTP API does around a Lambda integration (payload format 2.0), as plain functions.

One implementation, used by the local HTTP gateway *and* by tests that call handlers in-process, so that a test
event is byte-for-byte what the local stack (and, as far as we know, AWS) would send:

- route selection (``Router``),
- the request event (``build_event``): lower-cased headers with duplicates comma-joined, cookies split out,
  decoded query parameters with duplicates comma-joined, non-text bodies base64-encoded,
- JWT claims flattened to strings (``flatten_claims``),
- the Lambda response turned back into HTTP (``map_response``).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.template import RouteSpec

# ---------------------------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class RouteMatch:
    route: RouteSpec
    path_parameters: dict[str, str]


class Router:
    """Select a route like HTTP API does: the most specific path wins, then an exact method beats ANY."""

    def __init__(self, routes: Iterable[RouteSpec]) -> None:
        routes = list(routes)
        self._routes = [r for r in routes if r.path != "$default"]
        self._default = next((r for r in routes if r.path == "$default"), None)

    @property
    def routes(self) -> list[RouteSpec]:
        return [*self._routes, *([self._default] if self._default else [])]

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        segments = _segments(raw_path)
        candidates = []
        for route in self._routes:
            if route.method not in (method.upper(), "ANY"):
                continue
            params = _match_path(_segments(route.path), segments)
            if params is not None:
                candidates.append((_specificity(route), route, params))
        if candidates:
            _, route, params = min(candidates, key=lambda c: c[0])
            return RouteMatch(route, params)
        return RouteMatch(self._default, {}) if self._default else None


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s != ""]


def _match_path(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):  # greedy {proxy+}: one or more remaining segments
            if i >= len(segments):
                return None
            params[part[1:-2]] = unquote("/".join(segments[i:]))
            return params
        if i >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(segments[i])
        elif part != unquote(segments[i]):
            return None
    return params if len(pattern) == len(segments) else None


def _specificity(route: RouteSpec) -> tuple[tuple[int, ...], int]:
    # Lower sorts first: literal segments (0) beat {param} (1) beat {greedy+} (2), left to right.
    kinds = tuple(2 if p.endswith("+}") else 1 if p.startswith("{") else 0 for p in _segments(route.path))
    return kinds, 1 if route.method == "ANY" else 0


# ---------------------------------------------------------------------------------------------- request

# HTTP API passes these bodies as text; everything else (form posts from Twilio included) arrives base64.
_TEXT_SUBTYPES = ("json", "xml", "javascript")


def is_text_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = mime.partition("/")
    if main == "text":
        return True
    return any(sub == t or sub.endswith("+" + t) or sub.endswith("-" + t) for t in _TEXT_SUBTYPES)


def flatten_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """JWT claims as the HTTP API JWT authorizer hands them over: every value a string, ``["a","b"]`` → ``"[a b]"``."""
    return {key: _flatten_claim(value) for key, value in claims.items()}


def _flatten_claim(value: Any) -> str:
    # API Gateway formats claims the way Go's fmt prints decoded JSON values.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_flatten_claim(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_flatten_claim(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


@dataclass
class HttpRequest:
    """An HTTP request as received, before API Gateway turns it into an event."""

    method: str
    path: str  # raw (percent-encoded) path, no query string
    query_string: str = ""
    headers: Sequence[tuple[str, str]] = ()  # in arrival order, duplicates allowed
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass
class ApiContext:
    """Facts about the API that end up in ``requestContext``."""

    api_id: str = "localapi01"
    account_id: str = "123456789012"
    region: str = "us-east-1"
    stage: str = "$default"
    extra_headers: dict[str, str] = field(default_factory=dict)


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    api: ApiContext | None = None,
    claims: Mapping[str, Any] | None = None,
    scopes: Sequence[str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends for ``request`` on ``match.route``.

    ``claims`` are the verified token's claims (raw; they are flattened here). ``None`` means the route has no
    authorizer, and then ``requestContext.authorizer`` is absent as in AWS.
    """
    api = api or ApiContext()
    now = time.time() if now is None else now
    headers, cookies = _event_headers(request, api)
    domain = headers.get("host", f"{api.api_id}.execute-api.{api.region}.amazonaws.com").split(":")[0]
    raw_path = unquote(request.path)  # HTTP API hands the path over decoded (unlike REST APIs)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": request.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.query_string)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = _request_context(request, match, api, domain, raw_path, headers, now)
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": flatten_claims(claims), "scopes": list(scopes) if scopes else None}
        }
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = False
    if request.body:
        if is_text_content_type(headers.get("content-type")):
            event["body"] = request.body.decode("utf-8", errors="replace")
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _event_headers(request: HttpRequest, api: ApiContext) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":  # payload 2.0 moves cookies out of the headers
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    if request.body and "content-length" not in headers:
        headers["content-length"] = str(len(request.body))
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}")
    headers.update({k.lower(): v for k, v in api.extra_headers.items()})
    return headers, cookies


def _query_parameters(query_string: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _request_context(
    request: HttpRequest,
    match: RouteMatch,
    api: ApiContext,
    domain: str,
    raw_path: str,
    headers: Mapping[str, str],
    now: float,
) -> dict[str, Any]:
    return {
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method.upper(),
            "path": raw_path if api.stage == "$default" else f"/{api.stage}{raw_path}",
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": _request_id(),
        "routeKey": match.route.route_key,
        "stage": api.stage,
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }


def _request_id() -> str:
    # API Gateway request ids look like "JKJaXmPLvHcESHA=": 10 random bytes, base64.
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode()


# ---------------------------------------------------------------------------------------------- response


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def error_response(status: int, message: str) -> HttpResponse:
    """API Gateway's own error shape, e.g. ``{"message":"Not Found"}``."""
    return json_response(status, {"message": message})


def json_response(status: int, payload: Any) -> HttpResponse:
    body = json.dumps(payload).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def map_response(result: Any) -> HttpResponse:
    """Turn a handler's return value into HTTP the way HTTP API does for payload 2.0.

    A dict with ``statusCode`` is a full response; anything else is the JSON body of a 200 (a str is passed
    through as the body). A malformed response is API Gateway's 500.
    """
    if isinstance(result, dict) and "statusCode" in result:
        return _full_response(result)
    body = result if isinstance(result, str) else json.dumps(result)
    return HttpResponse(200, [("content-type", "application/json")], body.encode())


def _full_response(result: Mapping[str, Any]) -> HttpResponse:
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return error_response(500, "Internal Server Error")
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    single = {k.lower() for k, _ in headers}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in single:
            headers.extend((str(name), str(v)) for v in values)
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    return HttpResponse(status, headers, body)


def http_date(now: float | None = None) -> str:
    return formatdate(now, usegmt=True)
