"""Provider adapters behind one interface (providers.base.Provider). Pick one with ``provider_for``."""

from __future__ import annotations

from gateway.domain.channel import Provider as ProviderName
from gateway.providers.base import Provider


def provider_for(name: ProviderName | str) -> Provider:
    """The adapter for a provider; imported lazily so a function loads only the providers it uses."""
    if ProviderName(name) is ProviderName.TWILIO:
        from gateway.providers.twilio import TwilioProvider

        return TwilioProvider()
    from gateway.providers.meta import MetaProvider

    return MetaProvider()
