"""bench.load's run is bounded by count, not by the clock: every webhook of the plan is sent and answered, however
slowly the machine goes (tests/e2e/test_load.py failed on a loaded machine when the run gave up at a deadline)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from bench.load import Plan, Result, Webhook, fire, problems
from local.apigw import HttpRequest, HttpResponse
from local.http_gateway import LocalHttpServer, serve_in_thread


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    def answer(request: HttpRequest) -> HttpResponse:
        received.append(request.body)
        return HttpResponse(200, [("content-type", "text/xml")], b"<Response/>")

    server = LocalHttpServer(("127.0.0.1", 0), answer)
    serve_in_thread(server, "webhooks")
    yield f"http://127.0.0.1:{server.port}", received
    server.shutdown()
    server.server_close()


def test_every_webhook_is_sent_however_slow_the_machine(webhook_server: tuple[str, list[bytes]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, received = webhook_server
    webhooks = [Webhook("twilio", f"SM{n:032d}", "/webhooks/twilio", f"MessageSid=SM{n:032d}".encode(), {})
                for n in range(60)]
    plan = Plan("t", "token", {}, webhooks, {w.provider_message_id: w.provider for w in webhooks})
    # A machine so loaded that every look at the clock finds another 10 minutes gone.
    ticks = itertools.count()
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 600.0 * next(ticks))

    result: Result = fire(base_url, plan, concurrency=4)

    assert result.statuses == {200: 60} and result.errors == []
    assert sorted(received) == sorted(w.body for w in webhooks)
    result.stored.update(plan.unique.keys())  # (counting through the inbox API is the e2e test's part)
    assert problems(plan, result) == []
