"""Twilio (Programmable Messaging, WhatsApp). REST calls go through requests against TWILIO_API_BASE_URL."""

from __future__ import annotations

from typing import Any

from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import CredentialsRejected, ProviderError, ProviderUnavailable
from gateway.providers.base import HttpProvider

API_VERSION = "2010-04-01"
AUTH_ERROR_CODES = {20003, 20005, 20008}


class TwilioProvider(HttpProvider):
    name = "twilio"

    def _url(self, path: str) -> str:
        return f"{self.settings.twilio_api_base_url}/{API_VERSION}/{path}"

    def _get(self, path: str, secrets: Secrets, account_sid: str, **params: str) -> dict[str, Any]:
        response = self._request("GET", self._url(path), params=params, auth=(account_sid, secrets["auth_token"]))
        data = self._json(response)
        if response.ok:
            return data
        raise self._error(response.status_code, data)

    @staticmethod
    def _error(status: int, data: dict[str, Any]) -> ProviderError:
        code = data.get("code")
        message = str(data.get("message") or f"HTTP {status}")
        if status == 401 or code in AUTH_ERROR_CODES:
            return CredentialsRejected(
                f"Twilio rejected the account SID / auth token: {message}",
                provider_code=str(code or status),
                http_status=status,
                normalized_code="credentials_rejected",
            )
        if status == 429 or status >= 500:
            return ProviderUnavailable(
                f"Twilio is unavailable: {message}", provider_code=str(code or status), retryable=True
            )
        return ProviderError(f"Twilio refused the request: {message}", provider_code=str(code or status))

    def health_check(self, channel: Channel, secrets: Secrets) -> dict[str, Any]:
        account_sid = channel.account_sid or ""
        account = self._get(f"Accounts/{account_sid}.json", secrets, account_sid)
        numbers = self._get(
            f"Accounts/{account_sid}/IncomingPhoneNumbers.json",
            secrets,
            account_sid,
            PhoneNumber=channel.phone_number,
        )
        listed = numbers.get("incoming_phone_numbers") or []
        found = [n for n in listed if n.get("phone_number") == channel.phone_number]
        return {
            "account_status": account.get("status"),
            "account_name": account.get("friendly_name"),
            "account_type": account.get("type"),
            "number_found": bool(found),
            "number_sid": found[0].get("sid") if found else None,
            # WhatsApp senders registered through the Senders API are not always incoming numbers.
            "note": None if found else "number not among the account's incoming numbers (fine for WhatsApp senders)",
        }
