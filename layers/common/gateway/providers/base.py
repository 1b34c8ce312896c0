"""The provider interface. Services talk to this, never to a provider module directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from gateway.config import Settings, get_settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import ProviderUnavailable

if TYPE_CHECKING:  # requests is imported on first use: only the paths that call a provider pay for it
    import requests


class Provider(Protocol):
    name: str

    def health_check(self, channel: Channel, secrets: Secrets) -> dict[str, Any]:
        """Ask the provider about the channel's number with its credentials.

        Returns provider facts (JSON-safe). Raises CredentialsRejected when the provider refuses the
        credentials, ProviderError for other refusals, ProviderUnavailable when it cannot be reached.
        """
        ...


class HttpProvider:
    """Shared plumbing: one requests.Session per adapter, timeouts from settings, transport errors mapped."""

    name = "provider"

    def __init__(self, settings: Settings | None = None, session: requests.Session | None = None) -> None:
        import requests

        self.settings = settings or get_settings()
        self.session = session or requests.Session()

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        kwargs.setdefault("timeout", self.settings.provider_timeout_seconds)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as error:
            raise ProviderUnavailable(
                f"{self.name} could not be reached ({type(error).__name__}).", retryable=True
            ) from error

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
