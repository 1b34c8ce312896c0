"""CORS as HTTP API does it for an API with a ``CorsConfiguration`` (template.yaml), for the local gateway.

API Gateway answers a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) itself, before
routes and authorizers, with 204; the allow headers are there only when the origin is one of ``AllowOrigins``.
On every other response it drops CORS headers the integration set and adds ``Access-Control-Allow-Origin`` (and
the exposed headers, credentials) for an allowed origin. Origins compare exactly (scheme, host, port), "*" allows
any; methods and headers are listed as configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from local.apigw import HttpRequest, HttpResponse

HTTP_API_TYPE = "AWS::Serverless::HttpApi"


@dataclass(frozen=True)
class CorsPolicy:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CorsPolicy:
        def strings(name: str) -> tuple[str, ...]:
            return tuple(str(v).strip() for v in _as_list(config.get(name)) if str(v).strip())

        max_age = config.get("MaxAge")
        return cls(
            allow_origins=strings("AllowOrigins"),
            allow_methods=tuple(m.upper() for m in strings("AllowMethods")),
            allow_headers=tuple(h.lower() for h in strings("AllowHeaders")),
            expose_headers=strings("ExposeHeaders"),
            max_age=int(max_age) if max_age is not None else None,
            allow_credentials=bool(config.get("AllowCredentials", False)),
        )

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins

    def preflight(self, request: HttpRequest) -> HttpResponse | None:
        """The 204 API Gateway answers a preflight with, or None when the request is not a preflight."""
        origin = _header(request, "origin")
        if request.method.upper() != "OPTIONS" or not origin or not _header(request, "access-control-request-method"):
            return None
        headers: list[tuple[str, str]] = []
        if self.allows(origin):
            headers.append(("access-control-allow-origin", self._origin_value(origin)))
            if self.allow_methods:
                headers.append(("access-control-allow-methods", ",".join(self.allow_methods)))
            if self.allow_headers:
                headers.append(("access-control-allow-headers", ",".join(self.allow_headers)))
            if self.max_age is not None:
                headers.append(("access-control-max-age", str(self.max_age)))
            if self.allow_credentials:
                headers.append(("access-control-allow-credentials", "true"))
        return HttpResponse(204, headers, b"")

    def decorate(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """``response`` with the integration's CORS headers replaced by the configured ones."""
        headers = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
        origin = _header(request, "origin")
        if origin and self.allows(origin):
            headers.append(("access-control-allow-origin", self._origin_value(origin)))
            if self.expose_headers:
                headers.append(("access-control-expose-headers", ",".join(self.expose_headers)))
            if self.allow_credentials:
                headers.append(("access-control-allow-credentials", "true"))
        return HttpResponse(response.status, headers, response.body)

    def _origin_value(self, origin: str) -> str:
        # "*" may not be combined with credentials; API Gateway echoes the origin then.
        return "*" if "*" in self.allow_origins and not self.allow_credentials else origin


def policy_from_template(resources: Any) -> CorsPolicy | None:
    """The CORS policy of the template's HTTP API (its own ``CorsConfiguration``, else Globals), resolved against
    the local resources; None when the API has none. ``resources`` is a ``local.provision.Resources``."""
    template = resources.template
    apis: Iterable[dict[str, Any]] = template.resources_of_type(HTTP_API_TYPE).values()
    for api in apis:
        raw = (api.get("Properties") or {}).get("CorsConfiguration")
        if raw is None:
            raw = template.globals_for("HttpApi").get("CorsConfiguration")
        if raw is None or raw is False:
            continue
        if raw is True:  # SAM's shorthand: any origin
            return CorsPolicy(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
        return CorsPolicy.from_config(resources.resolve(raw))
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _header(request: HttpRequest, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name), None)
