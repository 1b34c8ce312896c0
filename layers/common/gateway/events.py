"""Normalized events on the EventBridge bus (DESIGN §4): subscribers (AI pipelines, CRMs) never touch the gateway.

Every event: source ``whatsapp.gateway``, detail-type such as ``message.sent``, detail
``{"tenant_id", "channel_id", "conversation_id", "message": <the API's message view>}``. Publishing is best effort
where the caller says so: a failure is logged and counted, never turned into a failed request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.aws import client as aws_client
from gateway.config import get_settings
from gateway.observability import logger, metrics

SOURCE = "whatsapp.gateway"
MESSAGE_SENT = "message.sent"
MESSAGE_RECEIVED = "message.received"
MESSAGE_STATUS_CHANGED = "message.status_changed"
MESSAGE_EDITED = "message.edited"
MESSAGE_DELETED = "message.deleted"


@dataclass
class EventPublisher:
    bus_name: str = field(default_factory=lambda: get_settings().event_bus_name)
    events: Any = None

    def _client(self) -> Any:
        if self.events is None:
            self.events = aws_client("events")
        return self.events

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """Put one event; True when EventBridge took it. Never raises."""
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), default=str),
            "EventBusName": self.bus_name,
        }
        try:
            answer = self._client().put_events(Entries=[entry])
        except Exception as error:  # best effort by design: the caller's work is already done
            logger.warning(
                "event not published", extra={"detail_type": detail_type, "error_type": type(error).__name__}
            )
            metrics.add_metric(name="EventPublishFailed", unit="Count", value=1)
            return False
        if answer.get("FailedEntryCount"):
            failed = (answer.get("Entries") or [{}])[0]
            logger.warning(
                "event refused by EventBridge",
                extra={"detail_type": detail_type, "error_code": failed.get("ErrorCode")},
            )
            metrics.add_metric(name="EventPublishFailed", unit="Count", value=1)
            return False
        return True
