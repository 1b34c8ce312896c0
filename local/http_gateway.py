"""Local stand-in for the HTTP API: exactly the template's routes, JWT-checked, handlers invoked in-process.

``LocalGateway.handle`` is a plain function from ``HttpRequest`` to ``HttpResponse`` (easy to test); the
threaded stdlib server around it only moves bytes.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import unquote_plus

from local.apigw import (
    ApiContext,
    HttpRequest,
    HttpResponse,
    Router,
    build_event,
    error_response,
    json_response,
    map_response,
)
from local.cors import policy_from_template
from local.identity import LocalIdentity, TokenRequestError
from local.jwt_auth import Forbidden, JwtAuthorizer, Unauthorized, local_jwks_url
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.template import AuthorizerSpec, RouteSpec

log = logging.getLogger("local.gateway")

# API Gateway's payload limit; a synchronous Lambda invoke caps lower (6 MB) but that is the function's problem.
MAX_BODY_BYTES = 10 * 1024 * 1024

DevRoute = Callable[[HttpRequest], HttpResponse]
# Answers what no route matched (the web console's files, local/static.py), or None for API Gateway's 404.
Fallback = Callable[[HttpRequest], HttpResponse | None]


class LocalGateway:
    def __init__(
        self,
        resources: Resources,
        runtime: FunctionRuntime,
        *,
        aws_endpoint: str,
        identity: LocalIdentity | None = None,
    ) -> None:
        self.resources = resources
        self.runtime = runtime
        self.identity = identity
        self.ready = threading.Event()
        self._aws_endpoint = aws_endpoint
        enabled = set(runtime.function_ids())
        self.router = Router(r for r in resources.template.http_routes() if r.function_id in enabled)
        self._authorizers: dict[tuple[str | None, str], JwtAuthorizer] = {}
        self._dev_routes: dict[tuple[str, str], DevRoute] = {
            ("GET", "/_local/health"): self._health,
            ("POST", "/_local/token"): self._token,
        }
        self.cors = policy_from_template(resources)
        self.fallback: Fallback | None = None

    def add_dev_route(self, method: str, path: str, route: DevRoute) -> None:
        self._dev_routes[(method.upper(), path)] = route

    # ------------------------------------------------------------------------------------------ requests
    def handle(self, request: HttpRequest) -> HttpResponse:
        if self.cors is None:
            return self._handle(request)
        # Like HTTP API with a CorsConfiguration: preflights answered before routes and authorizers.
        return self.cors.preflight(request) or self.cors.decorate(request, self._handle(request))

    def _handle(self, request: HttpRequest) -> HttpResponse:
        dev_route = self._dev_routes.get((request.method.upper(), request.path))
        if dev_route is not None:
            return dev_route(request)
        match = self.router.match(request.method, request.path)
        if match is None:
            page = self.fallback(request) if self.fallback is not None else None
            return page or error_response(404, "Not Found")
        route = match.route
        claims: dict[str, Any] | None = None
        scopes: list[str] | None = None
        if route.authorizer is not None:
            try:
                claims, scopes = self._authorizer(route, route.authorizer).authorize(_header_map(request), route.scopes)
            except Unauthorized as exc:
                log.info("401 %s %s: %s", request.method, request.path, exc)
                return error_response(401, "Unauthorized")
            except Forbidden as exc:
                log.info("403 %s %s: %s", request.method, request.path, exc)
                return error_response(403, "Forbidden")
        event = build_event(request, match, api=self._api_context(route), claims=claims, scopes=scopes)
        return self._invoke(route, event)

    def _invoke(self, route: RouteSpec, event: dict[str, Any]) -> HttpResponse:
        try:
            result = self.runtime.invoke(route.function_id, event)
        except Exception:
            log.exception("%s failed on %s", route.function_id, route.route_key)
            return error_response(500, "Internal Server Error")
        return map_response(result)

    def _api_context(self, route: RouteSpec) -> ApiContext:
        api_id = self.resources.ref(route.api_id) if route.api_id else "localapi01"
        return ApiContext(api_id=api_id, account_id=self.resources.account_id, region=self.resources.region)

    def _authorizer(self, route: RouteSpec, spec: AuthorizerSpec) -> JwtAuthorizer:
        key = (route.api_id, spec.name)
        if key not in self._authorizers:
            issuer = self.resources.resolver.resolve_str(spec.issuer)
            audiences = tuple(str(a) for a in self.resources.resolve(spec.audience))
            self._authorizers[key] = JwtAuthorizer(
                issuer=issuer,
                audiences=audiences,
                jwks_url=local_jwks_url(issuer, self._aws_endpoint),
                header_name=spec.header_name,
            )
        return self._authorizers[key]

    # ------------------------------------------------------------------------------------------ dev routes
    def _health(self, _: HttpRequest) -> HttpResponse:
        if not self.ready.is_set():
            return json_response(503, {"status": "starting"})
        return json_response(200, {"status": "ok"})

    def _token(self, request: HttpRequest) -> HttpResponse:
        if self.identity is None:
            return json_response(404, {"message": "Not Found"})
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise TokenRequestError("body must be a JSON object")
            tenant_id = body.get("tenant_id")
            if tenant_id is not None and not isinstance(tenant_id, str):
                raise TokenRequestError("tenant_id must be a string")
            token = self.identity.id_token(tenant_id, bool(body.get("admin", False)))
        except (ValueError, TokenRequestError) as exc:  # JSONDecodeError is a ValueError
            return json_response(400, {"error": {"code": "bad_request", "message": str(exc)}})
        return json_response(200, {"id_token": token})


def _header_map(request: HttpRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


# ---------------------------------------------------------------------------------------------- server
class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
    server_version = "local-http-api"
    sys_version = ""

    @property
    def app(self) -> Callable[[HttpRequest], HttpResponse]:
        return cast("LocalHttpServer", self.server).app

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            request = self._read_request()
        except _BodyTooLarge:
            return self._refuse(413, "Request Entity Too Large")
        except _BadFraming:
            return self._refuse(400, "Bad Request")
        response = self.app(request)
        # Health polls (tests, scripts waiting for the stack) would drown the useful lines. Logged before the
        # answer goes out, so whoever got the answer can find the line.
        level = logging.DEBUG if request.path == "/_local/health" else logging.INFO
        elapsed_ms = (time.monotonic() - started) * 1000
        log.log(level, "%s %s → %d (%.0f ms)", request.method, redacted_target(self.path), response.status, elapsed_ms)
        self._write(response)

    def _refuse(self, status: int, message: str) -> None:
        """A body that cannot be read as framed: answered without reading it, and the connection closed (what
        follows on it cannot be told apart from the body)."""
        log.info("%s %s → %d (body not read)", self.command, redacted_target(self.path), status)
        self._write(error_response(status, message))
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, a made-up one) is routed too, and answered like API Gateway answers a request
        # that matches no route (404), rather than http.server's 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_request(self) -> HttpRequest:
        path, _, query = self.path.partition("?")
        return HttpRequest(
            method=self.command,
            path=path,
            query_string=query,
            headers=list(self.headers.items()),
            body=self._read_body(),
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not lengths:
            return b""
        # One plain decimal: a negative length read to EOF past the cap; "+5", "5, 6" or two headers that
        # disagree leave the body's end unknown.
        if len(lengths) != 1 or not _DECIMAL.fullmatch(digits := lengths.pop()):
            raise _BadFraming
        digits = digits.lstrip("0") or "0"
        if len(digits) > len(str(MAX_BODY_BYTES)) or int(digits) > MAX_BODY_BYTES:  # no int() of 5,000 digits
            raise _BodyTooLarge
        return self.rfile.read(int(digits)) if int(digits) else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_field = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_field):
                raise _BadFraming
            size = int(size_field, 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is logged by _serve


class _BodyTooLarge(Exception):
    pass


class _BadFraming(Exception):
    """A Content-Length or chunk size that is not a plain non-negative number."""


_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Query parameters whose values never reach the access log: Meta's verify token, and anything named like a secret.
_SECRET_PARAM = re.compile(r"token|secret|password|passwd|signature|credential|key|auth", re.IGNORECASE)


def redacted_target(target: str) -> str:
    """The request target for the access log, with the values of secret-looking query parameters replaced
    (``hub.verify_token=REDACTED``); everything else as it was sent."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        parts.append(f"{name}=REDACTED" if eq and _SECRET_PARAM.search(unquote_plus(name)) else pair)
    return f"{path}?{'&'.join(parts)}"


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must not keep Ctrl-C from exiting
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(address, _RequestHandler)
        self.app = app

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def serve_in_thread(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    return thread
