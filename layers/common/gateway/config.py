"""Settings: the one place that reads the environment, once per cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    """Everything a function needs to know about its deployment (see template.yaml Globals)."""

    stage: str = "dev"
    region: str = "us-east-1"
    channels_table: str = "channels"
    conversations_table: str = "conversations"
    messages_table: str = "messages"
    idempotency_table: str = "idempotency"
    media_bucket: str = "media"
    credentials_key_id: str = "alias/credentials"
    event_bus_name: str = "default"
    # Empty in a deployment without a custom domain: the URL is then derived from the API id in the event.
    public_base_url: str = ""
    meta_graph_api_version: str = "v25.0"
    meta_app_secret: str = Field(default="", repr=False)
    media_allowed_hosts: tuple[str, ...] = ()
    # The local stack's relaxation only (local/dev.py; template.yaml never sets it): hosts named exactly on
    # media_allowed_hosts may resolve to loopback and be fetched over plain http (gateway/egress.py).
    media_allow_loopback: bool = False
    twilio_api_base_url: str = "https://api.twilio.com"
    meta_graph_base_url: str = "https://graph.facebook.com"
    credentials_cache_ttl_seconds: float = 300.0
    provider_timeout_seconds: float = 8.0

    @field_validator("public_base_url", "twilio_api_base_url", "meta_graph_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("media_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mapping = {
            "stage": "STAGE",
            "region": "AWS_REGION",
            "channels_table": "CHANNELS_TABLE",
            "conversations_table": "CONVERSATIONS_TABLE",
            "messages_table": "MESSAGES_TABLE",
            "idempotency_table": "IDEMPOTENCY_TABLE",
            "media_bucket": "MEDIA_BUCKET",
            "credentials_key_id": "CREDENTIALS_KEY_ID",
            "event_bus_name": "EVENT_BUS_NAME",
            "public_base_url": "PUBLIC_BASE_URL",
            "meta_graph_api_version": "META_GRAPH_API_VERSION",
            "meta_app_secret": "META_APP_SECRET",
            "media_allowed_hosts": "MEDIA_ALLOWED_HOSTS",
            "media_allow_loopback": "MEDIA_ALLOW_LOOPBACK",
            "twilio_api_base_url": "TWILIO_API_BASE_URL",
            "meta_graph_base_url": "META_GRAPH_BASE_URL",
        }
        values: dict[str, object] = {k: env[v] for k, v in mapping.items() if env.get(v)}
        if "region" not in values and env.get("AWS_DEFAULT_REGION"):
            values["region"] = env["AWS_DEFAULT_REGION"]
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (cold start). Tests call ``get_settings.cache_clear()``."""
    return Settings.from_env()
