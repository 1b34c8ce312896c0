"""Meta WhatsApp Cloud API. Graph calls go through requests against META_GRAPH_BASE_URL/<version>."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.credentials import Secrets
from gateway.domain.channel import Channel
from gateway.domain.errors import CredentialsRejected, ProviderError, ProviderUnavailable, ValidationFailed
from gateway.domain.outbound import MEDIA_TYPES, Outbound, ProviderSendResult, Recipient
from gateway.media import MediaError, MediaRequest
from gateway.providers.base import HttpProvider
from gateway.providers.send_errors import meta_error

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

    # ------------------------------------------------------------------ sending (PROTOCOLS §11)
    outbound_types = frozenset({"text", "image", "document", "audio", "video", "template", "reaction", "read"})
    # Media types that carry a caption on WhatsApp (audio does not), and the one that carries a filename.
    CAPTIONED = frozenset({"image", "document", "video"})

    def check_outbound(self, outbound: Outbound) -> None:
        if outbound.type not in self.outbound_types:
            raise ValidationFailed(f"type: '{outbound.type}' cannot be sent through Meta", field="type")
        if outbound.type == "template" and (outbound.template is None or outbound.template.is_twilio):
            raise ValidationFailed(
                "template: Meta channels send templates as {name, language, components}", field="template"
            )

    def _messages_url(self, channel: Channel) -> str:
        return self._url(f"{channel.phone_number_id or ''}/messages")

    def _post(self, channel: Channel, secrets: Secrets, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._send_request(
            "POST",
            self._messages_url(channel),
            json=payload,
            headers={"Authorization": f"Bearer {secrets['access_token']}"},
        )
        data = self._json(response)
        if not response.ok:
            raise meta_error(response.status_code, data)
        return data

    @classmethod
    def payload(cls, to: Recipient, outbound: Outbound) -> dict[str, Any]:
        """The Cloud API body for one outbound message (``recipient_type`` is required by the spec): ``to`` a
        phone number, else ``recipient`` = the BSUID (a user who shares no phone), or ``to`` a group."""
        body: dict[str, Any] = {"messaging_product": "whatsapp"}
        if to.group_id is not None:
            body |= {"recipient_type": "group", "to": to.group_id}
        elif to.phone is not None:
            body |= {"recipient_type": "individual", "to": to.phone}
        else:
            body |= {"recipient_type": "individual", "recipient": to.wa_user_id}
        body["type"] = outbound.type
        if outbound.type == "text":
            body["text"] = {"preview_url": bool(outbound.preview_url), "body": outbound.text or ""}
        elif outbound.type in MEDIA_TYPES:
            media: dict[str, Any] = {"link": outbound.media_url}
            if outbound.caption and outbound.type in cls.CAPTIONED:
                media["caption"] = outbound.caption
            if outbound.filename and outbound.type == "document":
                media["filename"] = outbound.filename
            body[outbound.type] = media
        elif outbound.type == "template" and outbound.template is not None:
            template: dict[str, Any] = {
                "name": outbound.template.name,
                # ``policy`` is legacy but still required by the published schema; "deterministic" is its only value.
                "language": {"policy": "deterministic", "code": outbound.template.language},
            }
            if outbound.template.components:
                template["components"] = outbound.template.components
            body["template"] = template
        elif outbound.type == "reaction":
            body["reaction"] = {"message_id": outbound.target_provider_message_id, "emoji": outbound.emoji or ""}
        return body

    def send(
        self,
        channel: Channel,
        secrets: Secrets,
        to: Recipient,
        outbound: Outbound,
        *,
        status_callback_url: str | None = None,
    ) -> ProviderSendResult:
        """``POST /{ver}/{phone_number_id}/messages`` → ``messages[0].id`` (a ``wamid``): accepted, not delivered.
        Statuses come back through the webhook, so ``status_callback_url`` is not used."""
        self.check_outbound(outbound)
        if outbound.type == "read":
            raise ValidationFailed("type: use mark_read for read receipts", field="type")
        data = self._post(channel, secrets, self.payload(to, outbound))
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        wamid = first.get("id")
        if not isinstance(wamid, str) or not wamid:
            raise self._maybe_sent(ValueError("Meta accepted the request but returned no message id"))
        contacts = data.get("contacts")
        contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
        details = {"wa_id": contact.get("wa_id"), "message_status": first.get("message_status")}
        if contact.get("user_id"):
            details["user_id"] = contact["user_id"]
        return ProviderSendResult(wamid, "sent", details)

    def mark_read(self, channel: Channel, secrets: Secrets, provider_message_id: str) -> None:
        """``{"messaging_product": "whatsapp", "status": "read", "message_id": wamid}`` → ``{"success": true}``."""
        self._post(
            channel,
            secrets,
            {"messaging_product": "whatsapp", "status": "read", "message_id": provider_message_id},
        )

    # ------------------------------------------------------------------ inbound media (PROTOCOLS §10)
    def media_request(self, channel: Channel, secrets: Secrets, media: Mapping[str, Any]) -> MediaRequest:
        """``GET /{ver}/{media-id}`` (Bearer) → a fresh ``url`` (valid 5 minutes, so asked for on every attempt),
        ``mime_type``, ``sha256``; the download then goes to that URL with the same Bearer token and the sha256 is
        checked. The webhook's own sha256 is the fallback when the lookup gives none."""
        media_id = media.get("provider_media_id")
        if not isinstance(media_id, str) or not media_id:
            raise MediaError("the webhook gave no media id")
        headers = {"Authorization": f"Bearer {secrets['access_token']}"}
        try:
            response = self._request("GET", self._url(quote(media_id, safe="")), headers=headers)
        except ProviderUnavailable as error:
            raise MediaError(f"media lookup failed: {error.message}", retryable=True) from error
        data = self._json(response)
        if not response.ok:
            refusal = self._error(response.status_code, data)
            retryable = isinstance(refusal, ProviderUnavailable) and refusal.retryable
            raise MediaError(f"media lookup refused: {refusal.message}", retryable=retryable)
        url = data.get("url")
        if not isinstance(url, str) or not url:
            raise MediaError("media lookup answered without a URL")
        sha256 = data.get("sha256") if isinstance(data.get("sha256"), str) else None
        mime_type = data.get("mime_type") if isinstance(data.get("mime_type"), str) else None
        return MediaRequest(
            url=url,
            headers=headers,
            expected_sha256=sha256 or media.get("sha256") or None,
            content_type=mime_type or media.get("content_type") or None,
        )
