"""Channels: a tenant's WhatsApp number connected through one provider."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.domain.keys import compose


class Provider(StrEnum):
    TWILIO = "twilio"
    META = "meta"


class ChannelStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class AutoReplyRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keywords: list[str] = Field(min_length=1, max_length=50)
    reply: str = Field(min_length=1, max_length=4096)

    @field_validator("keywords")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned = [k.strip() for k in value if k.strip()]
        if not cleaned:
            raise ValueError("needs at least one non-blank keyword")
        return cleaned


class AutoReplyConfig(BaseModel):
    """DESIGN §4 auto-reply, per channel (overridable per conversation with ``bot_mode``)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["on", "shadow", "off"] = "off"
    rules: list[AutoReplyRule] = Field(default_factory=list, max_length=100)
    fallback: str | None = Field(default=None, max_length=4096)
    unsupported_notice: str | None = Field(default=None, max_length=4096)
    operator_lock_minutes: int = Field(default=30, ge=1, le=24 * 60)


def route_key_twilio(phone_number: str) -> str:
    return compose("twilio", phone_number)


def route_key_meta(phone_number_id: str) -> str:
    return compose("meta", phone_number_id)


def route_key_verify(verify_token: str) -> str:
    return compose("meta-verify", verify_token)


@dataclass(frozen=True)
class Channel:
    tenant_id: str
    channel_id: str
    provider: Provider
    name: str
    phone_number: str
    status: ChannelStatus
    created_at: str
    updated_at: str
    credentials_ciphertext: str
    credential_hints: dict[str, str | None] = field(default_factory=dict)
    location_id: str | None = None
    account_sid: str | None = None
    messaging_service_sid: str | None = None
    phone_number_id: str | None = None
    business_account_id: str | None = None
    verify_token: str | None = None
    webhook_verified_at: str | None = None
    auto_reply: dict[str, Any] | None = None
    version: int = 1

    @property
    def active(self) -> bool:
        return self.status is ChannelStatus.ACTIVE

    def route_keys(self) -> list[str]:
        """The provider addresses this channel claims exclusively while active."""
        if self.provider is Provider.TWILIO:
            return [route_key_twilio(self.phone_number)]
        keys = [route_key_meta(self.phone_number_id or "")]
        if self.verify_token:
            keys.append(route_key_verify(self.verify_token))
        return keys

    def with_changes(self, **changes: Any) -> Channel:
        return replace(self, **changes)
