"""Meta WhatsApp Cloud API. Graph calls go through requests against META_GRAPH_BASE_URL/<version>."""

from __future__ import annotations

from typing import Any

from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import CredentialsRejected, ProviderError, ProviderUnavailable
from gateway.providers.base import HttpProvider

HEALTH_FIELDS = (
    "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,"
    "platform_type,throughput,messaging_limit_tier,account_mode,status"
)
AUTH_ERROR_CODES = {190, 102, 10, 200}
TRANSIENT_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131057}


class MetaProvider(HttpProvider):
    name = "meta"

    def _url(self, path: str) -> str:
        return f"{self.settings.meta_graph_base_url}/{self.settings.meta_graph_api_version}/{path}"

    @staticmethod
    def _error(status: int, data: dict[str, Any]) -> ProviderError:
        raw = data.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code = error.get("code")
        message = str(error.get("message") or f"HTTP {status}")
        if status == 401 or code in AUTH_ERROR_CODES:
            return CredentialsRejected(
                f"Meta rejected the access token: {message}",
                provider_code=str(code or status),
                http_status=status,
                normalized_code="credentials_rejected",
            )
        if status == 429 or status >= 500 or code in TRANSIENT_CODES:
            return ProviderUnavailable(
                f"Meta is unavailable: {message}", provider_code=str(code or status), retryable=True
            )
        return ProviderError(f"Meta refused the request: {message}", provider_code=str(code or status))

    def health_check(self, channel: Channel, secrets: Secrets) -> dict[str, Any]:
        response = self._request(
            "GET",
            self._url(channel.phone_number_id or ""),
            params={"fields": HEALTH_FIELDS},
            headers={"Authorization": f"Bearer {secrets['access_token']}"},
        )
        data = self._json(response)
        if not response.ok:
            raise self._error(response.status_code, data)
        return {
            "display_phone_number": data.get("display_phone_number"),
            "verified_name": data.get("verified_name"),
            "quality_rating": data.get("quality_rating"),
            "code_verification_status": data.get("code_verification_status"),
            "name_status": data.get("name_status"),
            "platform_type": data.get("platform_type"),
            "throughput": data.get("throughput"),
            "messaging_limit_tier": data.get("messaging_limit_tier"),
            "account_mode": data.get("account_mode"),
            "status": data.get("status"),
        }
