"""Channels API (admin only): connect, configure, disable and health-check WhatsApp numbers."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.bootstrap import ready
from gateway.http.resolver import current_identity, make_resolver, public_base_url
from gateway.http.schemas import ChannelCheckOut, ChannelListOut, ChannelOut, error_response_doc, json_response_doc
from gateway.observability import logger, metrics
from gateway.services.channels import ChannelIn, ChannelPatch, ChannelService, channel_view

app = make_resolver()
ChannelId = Annotated[str, Path(min_length=1, max_length=64)]


@lru_cache(maxsize=1)
def service() -> ChannelService:
    ready()
    return ChannelService()


def _view(channel: Any) -> dict[str, Any]:
    return channel_view(channel, public_base_url(app, service().settings))


@app.post(
    "/v1/channels",
    responses={
        201: json_response_doc("The channel, connected", ChannelOut),
        409: error_response_doc("channel_exists: the number (or Meta phone_number_id) is connected already"),
        422: error_response_doc("validation_error (the field is named)"),
    },
)
def create_channel(body: Annotated[ChannelIn, Body()]) -> Response[dict[str, Any]]:
    identity = current_identity(app, require_admin=True)
    channel = service().create(identity.tenant_id, body)
    metrics.add_metric(name="ChannelCreated", unit="Count", value=1)
    logger.info("channel created", extra={"channel_id": channel.channel_id, "provider": channel.provider.value})
    return Response(status_code=201, body=_view(channel), content_type="application/json")


@app.get("/v1/channels", responses={200: json_response_doc("The tenant's channels", ChannelListOut)})
def list_channels() -> dict[str, Any]:
    identity = current_identity(app, require_admin=True)
    return {"items": [_view(c) for c in service().list(identity.tenant_id)]}


@app.get("/v1/channels/<id>", responses={200: json_response_doc("The channel", ChannelOut)})
def get_channel(id: ChannelId) -> dict[str, Any]:
    identity = current_identity(app, require_admin=True)
    return _view(service().get(identity.tenant_id, id))


@app.patch(
    "/v1/channels/<id>",
    responses={
        200: json_response_doc("The channel, changed", ChannelOut),
        409: error_response_doc("channel_exists: re-enabled, but its number is connected elsewhere meanwhile"),
        422: error_response_doc("validation_error (the field is named)"),
    },
)
def update_channel(id: ChannelId, body: Annotated[ChannelPatch, Body()]) -> dict[str, Any]:
    identity = current_identity(app, require_admin=True)
    return _view(service().update(identity.tenant_id, id, body))


@app.delete("/v1/channels/<id>", responses={204: {"description": "Disabled: its webhooks answer as unknown"}})
def delete_channel(id: ChannelId) -> Response[None]:
    identity = current_identity(app, require_admin=True)
    service().disable(identity.tenant_id, id)
    return Response(status_code=204, body=None)


@app.post(
    "/v1/channels/<id>/check",
    responses={
        200: json_response_doc("The provider accepted the credentials; what it says about the number", ChannelCheckOut),
        422: error_response_doc("credentials_rejected: the provider refused the channel's credentials"),
        502: error_response_doc("provider_unavailable | provider_error: the provider could not be asked"),
    },
)
def check_channel(id: ChannelId) -> dict[str, Any]:
    identity = current_identity(app, require_admin=True)
    return service().check(identity.tenant_id, id)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
