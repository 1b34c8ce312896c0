"""The provider interface. Services talk to this, never to a provider module directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from gateway.config import Settings, get_settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import ProviderUnavailable, SendOutcomeUnknown
from gateway.domain.outbound import Outbound, ProviderSendResult, Recipient

if TYPE_CHECKING:  # requests is imported on first use: only the paths that call a provider pay for it
    from collections.abc import Mapping

    import requests

    from gateway.media import MediaRequest


class Provider(Protocol):
    name: str

    def health_check(self, channel: Channel, secrets: Secrets) -> dict[str, Any]:
        """Ask the provider about the channel's number with its credentials.

        Returns provider facts (JSON-safe). Raises CredentialsRejected when the provider refuses the
        credentials, ProviderError for other refusals, ProviderUnavailable when it cannot be reached.
        """
        ...

    # ------------------------------------------------------------------ sending
    # Outbound types this provider can send (``read`` = mark an inbound message as read).
    outbound_types: frozenset[str]

    def check_outbound(self, outbound: Outbound) -> None:
        """Raise ValidationFailed for a request this provider cannot express (before anything is stored)."""
        ...

    def send(
        self,
        channel: Channel,
        secrets: Secrets,
        to: Recipient,
        outbound: Outbound,
        *,
        status_callback_url: str | None = None,
    ) -> ProviderSendResult:
        """Send once to a contact (by phone, else by BSUID) or a group; no retries here: the caller decides
        (see services.send).

        Raises ProviderUnavailable(retryable=True) for answers proving the message was NOT accepted and worth
        retrying, SendOutcomeUnknown when it may have been accepted (never resend), CredentialsRejected /
        ProviderRejected for permanent refusals. Errors carry the normalized error (providers.send_errors).
        """
        ...

    def mark_read(self, channel: Channel, secrets: Secrets, provider_message_id: str) -> None:
        """Tell the provider the contact's message was read (blue ticks), where supported."""
        ...

    # ------------------------------------------------------------------ inbound media
    def media_request(self, channel: Channel, secrets: Secrets, media: Mapping[str, Any]) -> MediaRequest:
        """Where and with which credentials to download one stored inbound media entry (``media[n]`` of the
        message: ``provider_url`` for Twilio, ``provider_media_id`` for Meta). Raises ``gateway.media.MediaError``
        (``retryable`` for transient trouble) when the provider cannot say."""
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

    def _send_request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """A request that may create something at the provider: transport failures are split into "certainly
        not sent" (could not connect: retryable) and "maybe processed" (sent, then no answer: never resent)."""
        import requests
        from urllib3.exceptions import NewConnectionError

        timeout = self.settings.provider_timeout_seconds
        kwargs.setdefault("timeout", (min(3.05, timeout), timeout))
        try:
            return self.session.request(method, url, **kwargs)
        except (requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.InvalidURL) as error:
            raise self._not_sent(error) from error
        except requests.ConnectionError as error:
            reason = getattr(error.args[0], "reason", None) if error.args else None
            if isinstance(reason, NewConnectionError):  # refused / DNS: nothing left this process
                raise self._not_sent(error) from error
            raise self._maybe_sent(error) from error
        except requests.RequestException as error:  # ReadTimeout and friends: the request went out
            raise self._maybe_sent(error) from error

    def _not_sent(self, error: Exception) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{self.name} could not be reached ({type(error).__name__}).",
            retryable=True,
            normalized_code="provider_unavailable",
        )

    def _maybe_sent(self, error: Exception) -> SendOutcomeUnknown:
        return SendOutcomeUnknown(
            f"No answer from {self.name} after the request was sent ({type(error).__name__}): the message may or "
            "may not have been accepted, so it was not resent.",
            retryable=False,
            normalized_code="outcome_unknown",
        )
