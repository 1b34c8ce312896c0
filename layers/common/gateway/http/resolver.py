"""Resolver factory: every /v1 function builds its resolver here so validation and errors behave alike."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from gateway.config import Settings
from gateway.domain.errors import ValidationFailed
from gateway.http.auth import Identity, identity_from_event
from gateway.http.errors import register_error_handlers

JSON_CONTENT_TYPE = "application/json"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class GatewayResolver(APIGatewayHttpResolver):
    """Powertools' resolver, with the request body checked before Powertools reads it.

    Powertools decodes the body inside its validation middleware and lets anything but a JSON syntax error
    escape as an exception (a 500 of ours): base64 that does not decode, bytes that are not UTF-8, JSON nested
    deeper than the parser's recursion limit, a content type it has no parser for. Here each is the 4xx it is,
    answered before routing. The API speaks JSON only: a body under another content type is a 415.
    """

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        checked = dict(event)  # body_problem normalizes the body and headers of this copy
        problem = body_problem(checked)
        if problem is not None:
            return error_result(*problem)
        return super().resolve(checked, context)


def body_problem(event: dict[str, Any]) -> tuple[int, str, str] | None:
    """``(status, code, message)`` when a request body cannot be what a /v1 route reads; None when it can.

    Normalizes what it accepts so that Powertools reads exactly what was checked: a base64 body is replaced by
    its text, and the content type is lower-cased."""
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "").upper()
    if method not in _BODY_METHODS:
        return None  # Powertools reads no body here
    headers = event.get("headers") or {}
    content_type = str(headers.get("content-type") or "").strip().lower()
    body = event.get("body")
    if body is None or body == "":
        if content_type:  # nothing to interpret: read as JSON (no body), whatever the header says
            event["headers"] = {**headers, "content-type": JSON_CONTENT_TYPE}
        return None
    if not isinstance(body, str):
        return 400, "invalid_body", "The request body is not text."
    if content_type and content_type.split(";", 1)[0].strip() != JSON_CONTENT_TYPE:
        return 415, "unsupported_media_type", "The request body must be JSON (Content-Type: application/json)."
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # Unicode errors are ValueErrors
        return 400, "invalid_body", "The request body is not UTF-8 text (or not valid base64 when base64-encoded)."
    try:
        parsed = json.loads(text, parse_constant=_not_json, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(text):
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")  # a lone surrogate has no UTF-8 form
    except RecursionError:
        return 400, "invalid_json", "The request body is nested too deeply."
    except UnicodeEncodeError:
        return 400, "invalid_json", "The request body has a string with a lone UTF-16 surrogate (\\uD800-\\uDFFF)."
    except _NotJson as error:
        return 400, "invalid_json", f"The request body is not valid JSON: {error}."
    except ValueError:
        pass  # Powertools answers invalid JSON itself (400 invalid_json, through our handler)
    event["body"], event["isBase64Encoded"] = text, False
    if content_type:
        event["headers"] = {**headers, "content-type": content_type}
    return None


class _NotJson(ValueError):
    """What Python's JSON parser accepts but JSON is not (and what could not be answered as JSON again)."""


def _not_json(constant: str) -> Any:
    raise _NotJson(f"{constant} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text[:20]} is out of range")
    return value


def error_result(status: int, code: str, message: str) -> dict[str, Any]:
    """A payload 2.0 response with the contract's error body (for answers given before Powertools runs)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON_CONTENT_TYPE},
        "body": json.dumps({"error": {"code": code, "message": message}}),
        "isBase64Encoded": False,
    }


def make_resolver() -> APIGatewayHttpResolver:
    app = GatewayResolver(enable_validation=True)
    register_error_handlers(app)
    return app


def current_identity(app: APIGatewayHttpResolver, *, require_admin: bool = False) -> Identity:
    return identity_from_event(app.current_event.raw_event, require_admin=require_admin)


def parse_limit(value: int | None, *, default: int = 20, maximum: int = 100) -> int:
    if value is None:
        return default
    if value < 1 or value > maximum:
        raise ValidationFailed(f"limit: must be between 1 and {maximum}", field="limit")
    return value


def public_base_url(app: APIGatewayHttpResolver, settings: Settings) -> str:
    """The URL providers call. Configured explicitly, or this API's execute-api URL from the API id that API
    Gateway puts in the event (never from the Host header, which the caller controls)."""
    if settings.public_base_url:
        return settings.public_base_url
    context = app.current_event.raw_event.get("requestContext") or {}
    return f"https://{context.get('apiId', 'unknown')}.execute-api.{settings.region}.amazonaws.com"
