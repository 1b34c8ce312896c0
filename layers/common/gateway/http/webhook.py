"""The HTTP edge of provider webhooks (HTTP API payload 2.0), without the /v1 resolver.

Webhooks are not a REST API: no router, no OpenAPI validation, no JWT. They need the raw body bytes (signatures
are over them; HTTP API base64-encodes form bodies), ``rawPath``/``rawQueryString`` for the signed URL, and a
small answer. Kept free of Powertools' event handler so a cold webhook imports less.

Success answers are the provider's (TwiML for Twilio). Errors carry the contract's status code and a JSON body
``{"error": {"code", "message"}}`` (providers ignore error bodies; people debugging a webhook read them).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import Settings
from gateway.domain import errors as e
from gateway.observability import logger, metrics

EMPTY_TWIML = "<Response/>"


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-cased names (HTTP API already lower-cases them)
    body: bytes
    api_id: str | None

    @classmethod
    def from_event(cls, event: Mapping[str, Any], *, max_body_bytes: int) -> WebhookRequest:
        """BadRequest for a body that cannot be decoded, PayloadTooLarge above ``max_body_bytes``."""
        raw = event.get("body")
        if raw is not None and not isinstance(raw, str):
            raise e.BadRequest("The request body is not text.")
        raw = raw or ""
        encoded = bool(event.get("isBase64Encoded"))
        # Check before decoding too: a base64 body is 4/3 of the bytes it carries.
        if len(raw) > (max_body_bytes * 4 // 3 + 4 if encoded else max_body_bytes * 4):
            raise e.PayloadTooLarge(f"The request body is larger than {max_body_bytes} bytes.")
        if encoded:
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as error:
                raise e.BadRequest("The request body is not valid base64 (isBase64Encoded is set).") from error
        else:
            body = raw.encode("utf-8")
        if len(body) > max_body_bytes:
            raise e.PayloadTooLarge(f"The request body is larger than {max_body_bytes} bytes.")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        context = event.get("requestContext") or {}
        return cls(
            method=str((context.get("http") or {}).get("method") or "POST").upper(),
            raw_path=str(event.get("rawPath") or ""),
            raw_query=str(event.get("rawQueryString") or ""),
            headers=headers,
            body=body,
            api_id=context.get("apiId"),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def public_url(settings: Settings, request: WebhookRequest, route_path: str) -> str:
    """The URL the provider called, as configured (DESIGN §5, decisions D5): ``PUBLIC_BASE_URL`` or this API's
    execute-api URL from the API id API Gateway put in the event, + the route, + the raw query string if any.
    Never the Host header, which the caller controls."""
    api_url = f"https://{request.api_id or 'unknown'}.execute-api.{settings.region}.amazonaws.com"
    base = settings.public_base_url or api_url
    url = base + route_path
    return f"{url}?{request.raw_query}" if request.raw_query else url


def status_of(error: e.DomainError) -> int:
    if isinstance(error, e.Unauthorized):
        return 401
    if isinstance(error, e.Forbidden):
        return 403
    if isinstance(error, e.NotFound):
        return 404
    if isinstance(error, e.PayloadTooLarge):
        return 413
    return 400


def twiml(body: str = EMPTY_TWIML) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "text/xml"}, "body": body}


def error_answer(error: e.DomainError) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        payload["field"] = error.field
    return {
        "statusCode": status_of(error),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": payload}),
    }


def server_error() -> dict[str, Any]:
    """5xx: the provider retries (or uses its fallback URL) instead of the message being lost."""
    return {
        "statusCode": 500,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {"error": {"code": "internal_error", "message": "The message could not be stored; retry later."}}
        ),
    }


def answer(label: str, *, rejected: str, failed: str, handle: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a webhook's work and answer for it. A DomainError is the request's fault: its 4xx, counted under
    ``rejected`` (and ``InvalidSignature``, the signature-failure alarm's metric) and logged as "<label>
    rejected". Anything else is ours (storage, KMS): a 500 so that the provider retries or calls its fallback URL
    instead of the message being lost, counted under ``failed`` (the webhook-5xx alarm's metric) and logged with
    its traceback as "<label> failed" (docs/operations.md)."""
    try:
        return handle()
    except e.DomainError as error:
        metrics.add_metric(name=rejected, unit="Count", value=1)
        if isinstance(error, e.InvalidSignature):
            metrics.add_metric(name="InvalidSignature", unit="Count", value=1)
        logger.warning(f"{label} rejected", extra={"code": error.code, "reason": error.message})
        return error_answer(error)
    except Exception:
        metrics.add_metric(name=failed, unit="Count", value=1)
        logger.exception(f"{label} failed")
        return server_error()
