"""Connecting, configuring and checking channels (the Channels contract, DESIGN §2)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.config import Settings, get_settings
from gateway.credentials import CredentialsCipher, hint
from gateway.domain import ids
from gateway.domain.channel import AutoReplyConfig, Channel, ChannelStatus, Provider
from gateway.domain.errors import ValidationFailed
from gateway.domain.phone import normalize_e164
from gateway.providers import provider_for
from gateway.providers.base import Provider as ProviderPort
from gateway.store.channels_repo import ChannelRepository


def _pattern(regex: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


MAX_AUTO_REPLY_JSON = 64 * 1024


def _fits_in_an_item(config: AutoReplyConfig) -> AutoReplyConfig:
    """The configuration lives in the channel's DynamoDB item (400 KB at most): what the rule limits allow (100
    rules of 50 keywords and 4096-character replies) would not fit, so the whole of it is bounded too."""
    size = len(json.dumps(config.model_dump()))  # as stored: JSON with non-ASCII escaped
    if size > MAX_AUTO_REPLY_JSON:
        raise ValueError(f"is too large ({size} bytes as JSON; at most {MAX_AUTO_REPLY_JSON})")
    return config


Name = Annotated[str, Field(min_length=1, max_length=100)]
# Secrets travel in HTTP headers (Basic auth, Bearer) and sign with HMAC: printable ASCII, no spaces. A token
# with "€" in it was stored, and every later provider call with it failed in requests' header encoding (a 500).
Secret = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[\x21-\x7e]+$")]
LocationId = Annotated[str, Field(min_length=1, max_length=128)]
E164 = Annotated[str, AfterValidator(normalize_e164)]
AccountSid = Annotated[str, _pattern(r"AC[0-9a-fA-F]{32}", "a Twilio account SID: 'AC' and 32 hex digits")]
ServiceSid = Annotated[str, _pattern(r"MG[0-9a-fA-F]{32}", "a messaging service SID: 'MG' and 32 hex digits")]
GraphId = Annotated[str, _pattern(r"[0-9]{1,32}", "a numeric Meta id")]
VerifyToken = Annotated[str, _pattern(r"[A-Za-z0-9._~\-]{8,128}", "8 to 128 letters, digits, '.', '_', '~' or '-'")]


class TwilioChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: Literal["twilio"]
    name: Name
    phone_number: E164
    account_sid: AccountSid
    auth_token: Secret
    messaging_service_sid: ServiceSid | None = None
    location_id: LocationId | None = None


class MetaChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: Literal["meta"]
    name: Name
    phone_number_id: GraphId
    business_account_id: GraphId
    display_phone_number: E164
    access_token: Secret
    app_secret: Secret | None = None
    verify_token: VerifyToken | None = None
    location_id: LocationId | None = None


ChannelIn = Annotated[TwilioChannelIn | MetaChannelIn, Field(discriminator="provider")]


class ChannelPatch(BaseModel):
    """PATCH /v1/channels/{id}: any subset. Credentials given here replace the stored ones (rotation)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    status: Literal["active", "disabled"] | None = None
    location_id: LocationId | None = None
    auto_reply: Annotated[AutoReplyConfig, AfterValidator(_fits_in_an_item)] | None = None
    auth_token: Secret | None = None
    access_token: Secret | None = None
    app_secret: Secret | None = None
    verify_token: VerifyToken | None = None
    messaging_service_sid: ServiceSid | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ChannelPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


def channel_view(channel: Channel, public_base_url: str) -> dict[str, Any]:
    """The contract's channel representation. Secrets never leave: only ``credentials`` hints."""
    view: dict[str, Any] = {
        "id": channel.channel_id,
        "tenant_id": channel.tenant_id,
        "provider": channel.provider.value,
        "name": channel.name,
        "phone_number": channel.phone_number,
        "status": channel.status.value,
        "location_id": channel.location_id,
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
        "credentials": dict(channel.credential_hints),
        "auto_reply": channel.auto_reply,
    }
    if channel.provider is Provider.TWILIO:
        view |= {
            "webhook_url": f"{public_base_url}/webhooks/twilio",
            "status_callback_url": f"{public_base_url}/webhooks/twilio/status",
            "account_sid": channel.account_sid,
            "messaging_service_sid": channel.messaging_service_sid,
        }
    else:
        view |= {
            "webhook_url": f"{public_base_url}/webhooks/meta",
            "phone_number_id": channel.phone_number_id,
            "business_account_id": channel.business_account_id,
            "verify_token": channel.verify_token,
            "webhook_verified_at": channel.webhook_verified_at,
        }
    return view


@dataclass
class ChannelService:
    repo: ChannelRepository = field(default_factory=ChannelRepository)
    cipher: CredentialsCipher = field(default_factory=CredentialsCipher)
    settings: Settings = field(default_factory=get_settings)
    providers: dict[str, ProviderPort] = field(default_factory=dict)

    def _provider(self, name: Provider) -> ProviderPort:
        if name.value not in self.providers:
            self.providers[name.value] = provider_for(name)
        return self.providers[name.value]

    def create(self, tenant_id: str, body: TwilioChannelIn | MetaChannelIn) -> Channel:
        channel_id = ids.new_id("ch")
        now = ids.iso(ids.utcnow())
        secrets: dict[str, str]
        common: dict[str, Any] = {
            "tenant_id": tenant_id,
            "channel_id": channel_id,
            "name": body.name,
            "status": ChannelStatus.ACTIVE,
            "created_at": now,
            "updated_at": now,
            "location_id": body.location_id,
        }
        if isinstance(body, TwilioChannelIn):
            secrets = {"auth_token": body.auth_token}
            extra: dict[str, Any] = {
                "provider": Provider.TWILIO,
                "phone_number": body.phone_number,
                "account_sid": body.account_sid,
                "messaging_service_sid": body.messaging_service_sid,
            }
        else:
            if not body.app_secret and not self.settings.meta_app_secret:
                raise ValidationFailed(
                    "app_secret: is required (this deployment has no global META_APP_SECRET)", field="app_secret"
                )
            secrets = {"access_token": body.access_token}
            if body.app_secret:
                secrets["app_secret"] = body.app_secret
            extra = {
                "provider": Provider.META,
                "phone_number": body.display_phone_number,
                "phone_number_id": body.phone_number_id,
                "business_account_id": body.business_account_id,
                "verify_token": body.verify_token or ids.new_verify_token(),
            }
        channel = Channel(
            **common,
            **extra,
            credentials_ciphertext=self.cipher.encrypt(tenant_id, channel_id, secrets),
            credential_hints={k: hint(v) for k, v in secrets.items()},
        )
        return self.repo.create(channel)

    def list(self, tenant_id: str) -> list[Channel]:
        return self.repo.list(tenant_id)

    def get(self, tenant_id: str, channel_id: str) -> Channel:
        return self.repo.get(tenant_id, channel_id)

    def update(self, tenant_id: str, channel_id: str, patch: ChannelPatch) -> Channel:
        before = self.repo.get(tenant_id, channel_id)
        fields = patch.model_fields_set
        changes: dict[str, Any] = {"updated_at": ids.iso(ids.utcnow())}
        for name in ("name", "location_id"):
            if name in fields and getattr(patch, name) is not None:
                changes[name] = getattr(patch, name)
        if "location_id" in fields and patch.location_id is None:
            changes["location_id"] = None
        if patch.status is not None:
            changes["status"] = ChannelStatus(patch.status)
        if "auto_reply" in fields:
            changes["auto_reply"] = patch.auto_reply.model_dump() if patch.auto_reply else None

        allowed = (
            {"auth_token", "messaging_service_sid"}
            if before.provider is Provider.TWILIO
            else {"access_token", "app_secret", "verify_token"}
        )
        provider_fields = {"auth_token", "access_token", "app_secret", "verify_token", "messaging_service_sid"}
        for wrong in sorted((fields & provider_fields) - allowed):
            raise ValidationFailed(f"{wrong}: does not apply to a {before.provider.value} channel", field=wrong)
        if "messaging_service_sid" in fields:
            changes["messaging_service_sid"] = patch.messaging_service_sid
        if patch.verify_token:
            changes["verify_token"] = patch.verify_token

        rotated = {k: getattr(patch, k) for k in ("auth_token", "access_token", "app_secret") if getattr(patch, k)}
        if rotated:
            secrets = dict(self.cipher.decrypt(tenant_id, channel_id, before.credentials_ciphertext)) | rotated
            changes["credentials_ciphertext"] = self.cipher.encrypt(tenant_id, channel_id, secrets)
            changes["credential_hints"] = {k: hint(v) for k, v in secrets.items()}
        return self.repo.replace(before, before.with_changes(**changes))

    def disable(self, tenant_id: str, channel_id: str) -> None:
        before = self.repo.get(tenant_id, channel_id)
        if before.active:
            self.repo.replace(
                before, before.with_changes(status=ChannelStatus.DISABLED, updated_at=ids.iso(ids.utcnow()))
            )

    def check(self, tenant_id: str, channel_id: str) -> dict[str, Any]:
        channel = self.repo.get(tenant_id, channel_id)
        secrets = self.cipher.decrypt(tenant_id, channel_id, channel.credentials_ciphertext)
        details = self._provider(channel.provider).health_check(channel, secrets)
        return {
            "channel_id": channel.channel_id,
            "provider": channel.provider.value,
            "ok": True,
            "checked_at": ids.iso(ids.utcnow()),
            "details": details,
        }
