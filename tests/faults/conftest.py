"""Fault-matrix fixtures. The AWS side is tests/integration's (moto in-process with every resource of
template.yaml, handlers loaded like Lambda): its fixtures are reused here, not copied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gateway.bootstrap import ready
from gateway.config import get_settings
from gateway.media import MediaStreamer

from local.provision import Resources
from local.runtime import FunctionRuntime
from local.testing import ApiEvents
from tests.faults.faultlib import FaultInjector
from tests.faults.harness import ChaosServer, Gateway
from tests.integration import conftest as integration
from tests.integration.test_inbound_processor import Stack

# tests/integration's fixtures, reused as they are
template = integration.template
aws = integration.aws
api_event = integration.api_event
claims = integration.claims
invoke = integration.invoke

PROVIDER_TIMEOUT_SECONDS = 1.5  # short, yet never hit by a healthy answer on a busy machine


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    """Inject AWS faults (see faultlib); removed at the end of the test."""
    with FaultInjector().installed() as injector:
        yield injector


@pytest.fixture
def chaos(aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaosServer]:
    """The provider sandbox behind a misbehaving front; every provider call of the gateway goes there, with a
    short provider timeout (and media read timeout) so that 'slow' answers time out quickly."""
    server = ChaosServer()
    server.start()
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url)
    monkeypatch.setenv("META_GRAPH_BASE_URL", server.url)
    monkeypatch.setenv("MEDIA_ALLOWED_HOSTS", "127.0.0.1,localhost")
    monkeypatch.setenv("MEDIA_ALLOW_LOOPBACK", "true")
    # Twilio status callbacks of sends land on the chaos server (404 there), not on a host that does not exist.
    monkeypatch.setenv("PUBLIC_BASE_URL", server.url)
    get_settings.cache_clear()
    ready()
    get_settings().provider_timeout_seconds = PROVIDER_TIMEOUT_SECONDS
    monkeypatch.setattr(MediaStreamer.__init__, "__kwdefaults__",
                        {**(MediaStreamer.__init__.__kwdefaults__ or {}), "timeout": PROVIDER_TIMEOUT_SECONDS})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway(aws: Resources, invoke: Callable[[str, dict[str, Any]], Any], api_event: ApiEvents,
            claims: Callable[..., dict[str, Any]], chaos: ChaosServer) -> Gateway:
    return Gateway(aws, invoke, api_event, claims, chaos)


@pytest.fixture
def processor(aws: Resources, chaos: ChaosServer) -> Stack:
    """The inbound processor fed by moto's stream: ``processor.poller().drain()`` delivers like Lambda's event
    source mapping (retries, bisection, the dead-letter queue), ``replay`` as in ``make replay``."""
    return Stack(aws, chaos.sandbox, chaos.url, FunctionRuntime(aws, max_concurrency=1))
