"""The one place where errors become HTTP answers with the contract body {"error": {"code", "message"}}."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from gateway.domain import errors as e
from gateway.observability import logger

STATUS_BY_ERROR: list[tuple[type[e.DomainError], int]] = [
    (e.Unauthorized, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.ChannelExists, 409),
    (e.Conflict, 409),
    (e.PayloadTooLarge, 413),
    (e.ValidationFailed, 422),
    (e.CredentialsRejected, 422),
    (e.ProviderRejected, 422),
    (e.ProviderUnavailable, 502),
    (e.ProviderError, 502),
]


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def status_for(error: e.DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[int, str, str]:
    """Pydantic/Powertools errors → (status, code, message naming the field)."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return 400, "invalid_json", "The request body is not valid JSON."
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        # Drop the location kind ("body", "query") and discriminated-union tags ("twilio", "meta").
        if loc and loc[0] in {"body", "query", "path", "header"}:
            loc = loc[1:]
        loc = [p for p in loc if p not in {"twilio", "meta", "function-after[...]"}]
        field = ".".join(loc) or "body"
        msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    return 422, "validation_error", "; ".join(parts) or "The request is invalid."


def register_error_handlers(app: ApiGatewayResolver) -> None:
    @app.exception_handler(e.DomainError)
    def _domain(error: e.DomainError) -> Response:
        extra: dict[str, Any] = {}
        if error.field:
            extra["field"] = error.field
        if isinstance(error, e.ProviderError):
            extra["provider_error"] = error.as_error()
        return error_response(status_for(error), error.code, error.message, **extra)

    @app.exception_handler(RequestValidationError)
    def _validation(error: RequestValidationError) -> Response:
        status, code, message = describe_validation_errors(list(error.errors()))
        return error_response(status, code, message)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(404, "not_found", "No such route.")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return error_response(500, "internal_error", "Something went wrong on our side; it was logged.")
