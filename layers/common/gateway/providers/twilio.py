"""Twilio (Programmable Messaging, WhatsApp). REST calls go through requests against TWILIO_API_BASE_URL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import CredentialsRejected, ProviderError, ProviderUnavailable, ValidationFailed
from gateway.domain.outbound import MEDIA_TYPES, Outbound, ProviderSendResult, Recipient
from gateway.domain.phone import to_twilio_address
from gateway.media import MediaError, MediaRequest
from gateway.providers.base import HttpProvider
from gateway.providers.send_errors import twilio_error

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

    # ------------------------------------------------------------------ sending (PROTOCOLS §6)
    outbound_types = frozenset({"text", "image", "document", "audio", "video", "template"})

    def check_outbound(self, outbound: Outbound) -> None:
        if outbound.type not in self.outbound_types:
            raise ValidationFailed(f"type: '{outbound.type}' cannot be sent through Twilio", field="type")
        if outbound.type == "template" and (outbound.template is None or not outbound.template.is_twilio):
            raise ValidationFailed(
                "template: Twilio channels send templates as {content_sid: 'HX…', variables: {…}}", field="template"
            )

    def send(
        self,
        channel: Channel,
        secrets: Secrets,
        to: Recipient,
        outbound: Outbound,
        *,
        status_callback_url: str | None = None,
    ) -> ProviderSendResult:
        """``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, Basic auth). 201 → the message's ``SM…`` sid."""
        self.check_outbound(outbound)
        account_sid = channel.account_sid or ""
        if to.group_id is not None:
            raise ValidationFailed("Twilio channels have no WhatsApp groups", field="conversation")
        # A user who shares no phone number is addressed as whatsapp:<BSUID>, the shape Twilio gives their From.
        form: list[tuple[str, str]] = [("To", to_twilio_address(to.phone or str(to.wa_user_id)))]
        if channel.messaging_service_sid:
            form.append(("MessagingServiceSid", channel.messaging_service_sid))
        else:
            form.append(("From", to_twilio_address(channel.phone_number)))
        if outbound.type == "text":
            form.append(("Body", outbound.text or ""))
        elif outbound.type in MEDIA_TYPES:
            form.append(("MediaUrl", outbound.media_url or ""))
            if outbound.caption:
                form.append(("Body", outbound.caption))
        elif outbound.template is not None:
            form.append(("ContentSid", outbound.template.content_sid or ""))
            if outbound.template.variables:
                form.append(("ContentVariables", json.dumps(outbound.template.variables, separators=(",", ":"))))
        if status_callback_url:
            form.append(("StatusCallback", status_callback_url))
        response = self._send_request(
            "POST",
            self._url(f"Accounts/{account_sid}/Messages.json"),
            data=form,
            auth=(account_sid, secrets["auth_token"]),
            headers={"Accept": "application/json"},
        )
        data = self._json(response)
        if not response.ok:
            raise twilio_error(response.status_code, data)
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            raise self._maybe_sent(ValueError("Twilio accepted the request but returned no message sid"))
        return ProviderSendResult(sid, "sent", {"provider_status": data.get("status")})

    def mark_read(self, channel: Channel, secrets: Secrets, provider_message_id: str) -> None:
        raise ValidationFailed("type: read receipts cannot be sent through Twilio", field="type")

    # ------------------------------------------------------------------ inbound media (PROTOCOLS §5)
    def media_request(self, channel: Channel, secrets: Secrets, media: Mapping[str, Any]) -> MediaRequest:
        """``MediaUrlN`` with HTTP Basic auth (account SID + auth token). The streamer follows Twilio's redirect
        to its CDN without the credentials. The content type Twilio declared in the webhook wins over the CDN's."""
        url = media.get("provider_url")
        if not isinstance(url, str) or not url:
            raise MediaError("the webhook gave no media URL")
        return MediaRequest(
            url=url,
            auth=(channel.account_sid or "", secrets["auth_token"]),
            content_type=media.get("content_type") or None,
        )
