"""Resolver factory: every /v1 function builds its resolver here so validation and errors behave alike."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from gateway.config import Settings
from gateway.domain.errors import ValidationFailed
from gateway.http.auth import Identity, identity_from_event
from gateway.http.errors import register_error_handlers


def make_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
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
