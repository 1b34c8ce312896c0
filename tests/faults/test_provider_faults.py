"""Fault matrix, providers: HTTP 500 and 503, answers slower than the timeout, connections reset after the
request was sent or mid-body, connections refused: for operator sends, auto-replies, health checks and media
downloads. The provider is the sandbox behind a misbehaving front (``ChaosServer``), which counts every request.

The rule for sends (docs/decisions.md D9): only answers that prove the provider did NOT take the message (503,
429, connection refused) are retried; a 500, a timeout or a reset after the request went out are "outcome
unknown" and never resent (a duplicate WhatsApp message is worse than a failed one the operator sees).
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway.config import get_settings

from tests.faults.faultlib import FaultInjector
from tests.faults.harness import Gateway, closed_port_url
from tests.faults.test_processor_faults import AUTO_REPLY, JPEG, assert_done, inbound_with_media, replay_dead_letters
from tests.integration.test_inbound_processor import Stack

TWILIO_SEND = r"/Messages\.json$"
TEXT = {"type": "text", "text": "On it"}


@pytest.fixture
def conversation(gateway: Gateway) -> str:
    channel = gateway.twilio_channel()
    assert gateway.twilio_inbound(gateway.twilio_form())["statusCode"] == 200
    return gateway.conversation_id(channel)


def stored_reply_statuses(gateway: Gateway) -> list[tuple[str, str | None]]:
    return [(m["status"], (m.get("error") or {}).get("code")) for m in gateway.tables().message_items("outbound")]


# ---------------------------------------------------------------------------------------------- operator sends
@pytest.mark.parametrize(
    ("behaviours", "status", "code", "retryable", "requests"),
    [
        (["500"], 502, "outcome_unknown", False, 1),  # may have been accepted: never resent
        (["slow"], 502, "outcome_unknown", False, 1),  # timed out after the request went out
        (["reset"], 502, "outcome_unknown", False, 1),  # reset after the request went out
        (["503", "503", "503"], 502, "provider_unavailable", True, 3),  # refused each time: retried, then given up
        (["503"], 201, None, None, 2),  # refused once, accepted on the retry: sent once
    ],
    ids=["500", "timeout", "reset", "503-always", "503-once"],
)
def test_operator_send(gateway: Gateway, conversation: str, behaviours: list[str], status: int, code: str | None,
                       retryable: bool | None, requests: int) -> None:
    gateway.chaos.on("POST", TWILIO_SEND, *behaviours)

    answered, body = gateway.send(conversation, TEXT, key="k-1")

    assert answered == status, body
    assert len(gateway.chaos.sends()) == requests
    if code is None:
        assert body["status"] == "sent"
    else:
        assert body["error"]["code"] == "provider_unavailable"
        assert (body["error"]["provider_error"]["code"], body["error"]["provider_error"]["retryable"]) == (code,
                                                                                                       retryable)
        (stored,) = gateway.tables().message_items("outbound")
        assert stored["status"] == "failed" and stored["message_id"] == body["error"]["message_id"]
    # the client's retry with the same key: the first answer again, nothing sent again
    gateway.chaos.heal()
    again, replayed = gateway.send(conversation, TEXT, key="k-1")
    assert (again, replayed) == (answered, body)
    assert len(gateway.chaos.sends()) == requests
    gateway.tables().assert_consistent()


def test_operator_send_with_the_provider_unreachable_is_retried_then_502(gateway: Gateway, conversation: str) -> None:
    get_settings().twilio_api_base_url = closed_port_url()  # connection refused: nothing ever left

    answered, body = gateway.send(conversation, TEXT)

    assert answered == 502, body
    assert body["error"]["provider_error"] == {**body["error"]["provider_error"], "code": "provider_unavailable",
                                               "retryable": True}
    assert gateway.chaos.sends() == []
    gateway.tables().assert_consistent()


# ---------------------------------------------------------------------------------------------- health checks
@pytest.mark.parametrize(("provider", "behaviour"), [("twilio", "500"), ("meta", "503"), ("twilio", "slow"),
                                                     ("meta", "reset"), ("twilio", "refused"), ("meta", "refused")])
def test_health_check_fault_is_a_clear_502_and_writes_nothing(gateway: Gateway, behaviour: str,
                                                              provider: str) -> None:
    channel = gateway.twilio_channel() if provider == "twilio" else gateway.meta_channel()
    before = gateway.tables()
    if behaviour == "refused":
        url = closed_port_url()
        get_settings().twilio_api_base_url = get_settings().meta_graph_base_url = url
    else:
        gateway.chaos.always("GET", r"^/(2010-04-01|v\d+\.\d+)/", behaviour)

    status, body = gateway.channels("POST", f"/v1/channels/{channel['id']}/check")

    assert status == 502, body
    assert body["error"]["code"] == "provider_unavailable" and body["error"]["provider_error"]["retryable"] is True
    assert gateway.tables() == before
    gateway.chaos.heal()
    get_settings().twilio_api_base_url = get_settings().meta_graph_base_url = gateway.chaos.url
    status, body = gateway.channels("POST", f"/v1/channels/{channel['id']}/check")
    assert status == 200 and body["ok"] is True, body


# ---------------------------------------------------------------------------------------------- auto-replies
@pytest.mark.parametrize(
    ("behaviours", "sends", "outcome"),
    [
        (["500"], 1, ("failed", "outcome_unknown")),  # may have been accepted: never resent
        (["slow"], 1, ("failed", "outcome_unknown")),
        (["reset"], 1, ("failed", "outcome_unknown")),
        (["503"], 2, ("sent", None)),  # certainly refused: the record's retry sends the same stored reply
        (["503"] * 4, 5, ("sent", None)),  # refused on every delivery: dead-lettered, the replay sends it
    ],
    ids=["500", "timeout", "reset", "503-once", "503-until-dead-lettered"],
)
def test_auto_reply(gateway: Gateway, processor: Stack, behaviours: list[str], sends: int,
                    outcome: tuple[str, str | None]) -> None:
    gateway.twilio_channel(AUTO_REPLY)
    inbound_with_media(gateway)
    gateway.chaos.on("POST", TWILIO_SEND, *behaviours)
    poller = processor.poller()

    poller.drain()
    if processor.dead_letters():
        assert len(behaviours) == 4
        assert replay_dead_letters(gateway, processor).ok
        poller.drain()

    assert len(gateway.chaos.sends()) == sends
    assert stored_reply_statuses(gateway) == [outcome]
    assert processor.dead_letters() == []
    tables = gateway.tables()
    tables.assert_consistent()
    (claim,) = tables.idempotency
    assert claim["state"] == "done"


def test_auto_reply_with_the_provider_unreachable_is_resent_by_the_replay(gateway: Gateway, processor: Stack) -> None:
    gateway.twilio_channel(AUTO_REPLY)
    inbound_with_media(gateway)
    get_settings().twilio_api_base_url = closed_port_url()
    poller = processor.poller()

    poller.drain()

    assert processor.dead_letters() and gateway.chaos.sends() == []
    assert stored_reply_statuses(gateway) == [("queued", None)]  # stored, certainly not sent, marked for resend
    get_settings().twilio_api_base_url = gateway.chaos.url
    assert replay_dead_letters(gateway, processor).ok
    poller.drain()
    assert_done(gateway)


# ---------------------------------------------------------------------------------------------- media downloads
@pytest.mark.parametrize(("hop", "behaviour"), [("api", "500"), ("cdn", "503"), ("api", "slow"), ("cdn", "reset"),
                                                ("cdn", "cut"), ("cdn", "stall")])
def test_twilio_media_download_fault_once_is_retried_and_stored(
    gateway: Gateway, processor: Stack, behaviour: str, hop: str
) -> None:
    gateway.twilio_channel(AUTO_REPLY)
    inbound_with_media(gateway)
    gateway.chaos.on("GET", r"/Media/ME\d+$" if hop == "api" else r"^/_sandbox/cdn/", behaviour)
    poller = processor.poller()

    poller.drain()

    assert processor.dead_letters() == []
    assert len(gateway.chaos.requests("GET", r"/_sandbox/cdn/")) == (2 if hop == "cdn" else 1)
    assert_done(gateway)


def test_twilio_media_host_failing_for_good_is_dead_lettered_and_replayed(gateway: Gateway, processor: Stack) -> None:
    gateway.twilio_channel(AUTO_REPLY)
    inbound_with_media(gateway)
    gateway.chaos.always("GET", r"^/_sandbox/cdn/", "cut")
    poller = processor.poller()

    poller.drain()

    assert processor.dead_letters()
    (message,) = gateway.tables().message_items("inbound")
    assert message["media"][0]["status"] == "pending"
    gateway.chaos.heal()
    assert replay_dead_letters(gateway, processor).ok
    poller.drain()
    assert_done(gateway)


@pytest.mark.parametrize(("method", "path", "behaviour"), [
    ("GET", r"^/v\d+\.\d+/\d+$", "503"),  # the Graph lookup (media id → URL)
    ("GET", r"^/_sandbox/media/", "cut"),  # the download itself
])
def test_meta_media_fault_once_is_retried_and_stored(gateway: Gateway, processor: Stack, faults: FaultInjector,
                                                     method: str, path: str, behaviour: str) -> None:
    gateway.meta_channel()
    media = gateway.chaos.upload_media(JPEG, "image/jpeg")
    payload = gateway.meta_messages("wamid.media")
    message: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update(type="image", image={"id": media["id"], "mime_type": "image/jpeg", "sha256": media["sha256"]})
    assert gateway.meta_post(payload)["statusCode"] == 200
    gateway.chaos.on(method, path, behaviour)

    processor.poller().drain()

    assert processor.dead_letters() == []
    tables = gateway.tables()
    (stored,) = tables.message_items("inbound")
    assert stored["media"][0]["status"] == "stored"
    assert len(gateway.chaos.requests(method, path)) == 2  # the failed attempt and the retry
    tables.assert_consistent()
