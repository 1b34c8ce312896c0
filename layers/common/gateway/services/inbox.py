"""The tenant's inbox: conversations by recent activity, their messages newest first (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from gateway.aws import client as aws_client
from gateway.config import Settings, get_settings
from gateway.domain.media import serving_headers
from gateway.store.conversations_repo import ConversationRepository
from gateway.store.messages_repo import MessageRepository
from gateway.store.models import ConversationModel, MessageModel

PRESIGNED_URL_SECONDS = 900


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_mode: Literal["on", "shadow", "off"] | None = None
    release_operator_lock: Literal[True] | None = None
    mark_read: Literal[True] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ConversationPatch:
        if not self.model_fields_set:
            raise ValueError("give bot_mode, release_operator_lock or mark_read")
        return self


def conversation_view(item: ConversationModel) -> dict[str, Any]:
    return {
        "id": item.conversation_id,
        "channel_id": item.channel_id,
        "provider": item.provider,
        "contact": {"phone": item.contact_phone, "name": item.contact_name},
        "last_message_at": item.last_message_at,
        "last_inbound_at": item.last_inbound_at,
        "last_message_preview": item.last_message_preview,
        "unread_count": int(item.unread_count or 0),
        "bot_mode": item.bot_mode,
        "operator_lock_until": item.operator_lock_until,
        "location_id": item.location_id,
        "created_at": item.created_at,
    }


@dataclass
class InboxService:
    conversations: ConversationRepository = field(default_factory=ConversationRepository)
    messages: MessageRepository = field(default_factory=MessageRepository)
    settings: Settings = field(default_factory=get_settings)
    s3: Any = None

    def list_conversations(self, tenant_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        page = self.conversations.list_by_activity(tenant_id, limit, cursor)
        return {"items": [conversation_view(c) for c in page.items], "next_cursor": page.next_cursor}

    def get_conversation(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        return conversation_view(self.conversations.get(tenant_id, conversation_id))

    def update_conversation(self, tenant_id: str, conversation_id: str, patch: ConversationPatch) -> dict[str, Any]:
        actions: list[Any] = []
        if "bot_mode" in patch.model_fields_set:
            actions.append(
                ConversationModel.bot_mode.set(patch.bot_mode)
                if patch.bot_mode
                else ConversationModel.bot_mode.remove()
            )
        if patch.release_operator_lock:
            actions.append(ConversationModel.operator_lock_until.remove())
        if patch.mark_read:
            actions.append(ConversationModel.unread_count.set(0))
        if actions:  # {"release_operator_lock": null} asks for nothing: DynamoDB refuses an empty update
            self.conversations.update(tenant_id, conversation_id, actions)
        return self.get_conversation(tenant_id, conversation_id)

    def list_messages(self, tenant_id: str, conversation_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        page = self.messages.list(tenant_id, conversation_id, limit, cursor)
        if not page.items and cursor is None:
            self.conversations.get(tenant_id, conversation_id)  # 404 for a conversation that is not theirs
        return {"items": [self.message_view(m) for m in page.items], "next_cursor": page.next_cursor}

    def message_view(self, item: MessageModel, *, presign: bool = True) -> dict[str, Any]:
        """The API's view of a message; ``presign=False`` leaves media ``url`` None (a URL signs with the caller's
        role, which must then allow s3:GetObject: sign only what someone will use)."""
        media = [m.as_dict() if hasattr(m, "as_dict") else dict(m) for m in item.media or []]
        return {
            "id": item.message_id,
            "conversation_id": item.conversation_id,
            "channel_id": item.channel_id,
            "direction": item.direction,
            "provider": item.provider,
            "provider_message_id": item.provider_message_id,
            "type": item.type,
            "text": item.text,
            "media": [self._media_view(m, presign) for m in media],
            "location": item.location,
            "context": item.context,
            "content": item.content,
            "status": item.status,
            "error": item.error,
            "sender": item.sender or {},
            "created_at": item.created_at,
            "status_updated_at": item.status_updated_at,
        }

    def _media_view(self, media: dict[str, Any], presign: bool) -> dict[str, Any]:
        url = None
        if presign and media.get("status") == "stored" and media.get("s3_key"):
            # A contact's HTML or SVG must never render as a page: the URL fixes the type and disposition.
            content_type, disposition = serving_headers(media.get("content_type"), media.get("filename"))
            url = self._s3().generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.settings.media_bucket,
                    "Key": media["s3_key"],
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition,
                },
                ExpiresIn=PRESIGNED_URL_SECONDS,
            )
        return {
            "content_type": media.get("content_type"),
            "size": media.get("size"),
            "sha256": media.get("sha256"),
            "status": media.get("status", "pending"),
            "url": url,
            "filename": media.get("filename"),
            "caption": media.get("caption"),
            "reason": media.get("reason"),
        }

    def _s3(self) -> Any:
        if self.s3 is None:
            self.s3 = aws_client("s3")
        return self.s3
