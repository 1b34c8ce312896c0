"""The health-check calls of both adapters, sent to Prism serving the official specs.

A request that does not match the spec (path, parameters, auth scheme) makes Prism answer 401/422, which the
adapters raise as CredentialsRejected / ProviderError, so these tests fail on any drift from the specs.
"""

from __future__ import annotations

import pytest
from gateway.config import Settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.errors import CredentialsRejected
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider

pytestmark = pytest.mark.contract

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def _channel(provider: Provider, **extra: str) -> Channel:
    return Channel(
        tenant_id="acme",
        channel_id="ch_1",
        provider=provider,
        name="Main",
        phone_number="+14155238886",
        status=ChannelStatus.ACTIVE,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        credentials_ciphertext="unused",
        **extra,  # type: ignore[arg-type]
    )


def test_twilio_health_check_matches_the_twilio_spec(prism_twilio: str) -> None:
    provider = TwilioProvider(Settings(twilio_api_base_url=prism_twilio))
    report = provider.health_check(
        _channel(Provider.TWILIO, account_sid=ACCOUNT_SID), Secrets(auth_token="token-from-the-test")
    )
    assert set(report) >= {"account_status", "number_found"}


def test_meta_health_check_matches_the_meta_spec(prism_meta: str) -> None:
    provider = MetaProvider(Settings(meta_graph_base_url=prism_meta, meta_graph_api_version="v23.0"))
    report = provider.health_check(
        _channel(Provider.META, phone_number_id="106540352242922"), Secrets(access_token="EAAG-test-token")
    )
    assert "quality_rating" in report


def test_meta_without_a_token_is_refused_by_the_spec_and_reported_as_rejected_credentials(prism_meta: str) -> None:
    # Given an empty token the adapter still sends "Bearer " — Prism (the spec's security scheme) refuses it.
    provider = MetaProvider(Settings(meta_graph_base_url=prism_meta, meta_graph_api_version="v23.0"))
    provider.session.headers.clear()
    with pytest.raises(CredentialsRejected):
        provider.health_check(_channel(Provider.META, phone_number_id="106540352242922"), Secrets(access_token=""))
