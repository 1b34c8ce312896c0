"""ChannelRepository.resolve's warm cache against moto, with an injected clock (docs/decisions.md D15).

A miss ("no such channel") is cached for a second at most, so a channel created or re-enabled right after a probe
of its number is found; known channels are cached longer and survive any flood of unknown addresses.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway.bootstrap import ready
from gateway.domain.channel import Channel, ChannelStatus, Provider, route_key_twilio
from gateway.store.channels_repo import MISS_CACHE_SECONDS, ChannelRepository, ExpiringLru

from tests.integration.test_twilio_webhook import aws_calls

NUMBER = "+14155238886"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def channel(number: str = NUMBER, channel_id: str = "ch_1") -> Channel:
    return Channel(
        tenant_id="acme", channel_id=channel_id, provider=Provider.TWILIO, name="Main", phone_number=number,
        status=ChannelStatus.ACTIVE, created_at="2026-01-01T00:00:00.000Z", updated_at="2026-01-01T00:00:00.000Z",
        credentials_ciphertext="x", account_sid="AC" + "0" * 32,
    )


@pytest.fixture
def clock(aws: Any) -> Clock:
    ready()
    return Clock()


def test_a_miss_is_cached_for_a_second_at_most(clock: Clock) -> None:
    probing = ChannelRepository(clock=clock)  # the webhook instance that saw the probe
    key = route_key_twilio(NUMBER)
    assert MISS_CACHE_SECONDS <= 1.0
    assert probing.resolve(key) is None

    ChannelRepository().create(channel())  # the admin API, in another instance, a moment later
    with aws_calls() as calls:
        assert probing.resolve(key) is None  # within the same instant: still the cached miss, no read
    assert calls == []

    clock.now += MISS_CACHE_SECONDS
    found = probing.resolve(key)
    assert found is not None and found.channel_id == "ch_1"


def test_a_re_enabled_channel_is_found_after_a_second(clock: Clock) -> None:
    admin = ChannelRepository()
    created = admin.create(channel())
    disabled = admin.replace(created, created.with_changes(status=ChannelStatus.DISABLED))
    probing = ChannelRepository(clock=clock)
    key = route_key_twilio(NUMBER)
    assert probing.resolve(key) is None

    admin.replace(disabled, disabled.with_changes(status=ChannelStatus.ACTIVE))
    clock.now += 1.0

    found = probing.resolve(key)
    assert found is not None and found.active


def test_a_known_channel_is_served_from_the_cache_while_warm(clock: Clock) -> None:
    ChannelRepository().create(channel())
    repo = ChannelRepository(clock=clock)
    key = route_key_twilio(NUMBER)
    assert repo.resolve(key) is not None
    clock.now += 59
    with aws_calls() as calls:
        assert repo.resolve(key) is not None
    assert calls == []


def test_known_channels_survive_a_flood_of_unknown_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads are counted by the repository's own lookup (no table needed): 10,000 unknown numbers, more than
    either cache holds, and the known channel is still served without a read."""
    known = route_key_twilio(NUMBER)
    looked_up: list[str] = []
    repo = ChannelRepository(clock=Clock())

    def lookup(route_key: str) -> Channel | None:
        looked_up.append(route_key)
        return channel() if route_key == known else None

    monkeypatch.setattr(repo, "_resolve_uncached", lookup)
    assert repo.resolve(known) is not None

    for n in range(10_000):
        assert repo.resolve(route_key_twilio(f"+1415600{n:04d}")) is None
    looked_up.clear()

    assert repo.resolve(known) is not None
    assert looked_up == []


def test_the_known_channels_cache_evicts_the_least_recently_used() -> None:
    cache: ExpiringLru[str] = ExpiringLru(size=2, ttl=60)
    cache.put("a", "A", now=0)
    cache.put("b", "B", now=0)
    assert cache.get("a", now=1) == (True, "A")  # "a" is now the most recently used
    cache.put("c", "C", now=2)

    assert cache.get("b", now=3) == (False, None)
    assert cache.get("a", now=3) == (True, "A")
    assert cache.get("c", now=3) == (True, "C")
    assert cache.get("c", now=62) == (False, None)  # expired
    assert len(cache) == 1
