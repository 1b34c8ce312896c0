"""The media downloader cannot be pointed at an internal service (docs/decisions.md D19).

The victim is a real HTTP server on 127.0.0.1, standing for what a Lambda can reach on loopback (the runtime
API on 127.0.0.1:9001) or in its VPC. Every test asserts what it RECEIVED, so a refusal that came after a
request went out (with the channel's credentials) still fails.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.egress import EgressPolicy, ForbiddenDestination
from gateway.egress_session import checked_session
from gateway.media import MediaError, MediaRequest, MediaStreamer

from local.testing import MediaHost

BASIC = ("ACsid", "auth-token-value")
BEARER = {"Authorization": "Bearer meta-access-token"}


def _redirect_to(location: str) -> Any:
    def route(handler: Any) -> None:
        handler.send_response(302)
        handler.send_header("Location", location.format(port=handler.server.port))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture
def victim() -> Iterator[MediaHost]:
    routes = {
        "/hop": _redirect_to("http://127.0.0.1:{port}\\@localhost/cdn/x"),  # the payload as a redirect target
    }
    with MediaHost({"x": (b"internal data", "text/plain")}, routes=routes) as host:
        yield host


def _streamer(allowed: tuple[str, ...], *, loopback: bool) -> MediaStreamer:
    return MediaStreamer(allowed, "media", allow_loopback=loopback, timeout=5)


@pytest.mark.parametrize("loopback", [False, True], ids=["deployed", "local-stack"])
@pytest.mark.parametrize("credentials", ["basic", "bearer"])
def test_the_parser_mismatch_payload_reaches_nothing(victim: MediaHost, loopback: bool, credentials: str) -> None:
    # urllib.parse reads the host as allowed.host; urllib3 (which connects) reads 127.0.0.1.
    url = f"http://127.0.0.1:{victim.port}\\@allowed.host/x"
    request = MediaRequest(url=url, auth=BASIC) if credentials == "basic" else MediaRequest(url=url, headers=BEARER)

    with pytest.raises(MediaError, match="backslash") as caught:
        _streamer(("allowed.host",), loopback=loopback).open(request)

    assert not caught.value.retryable
    assert victim.hits == []


def test_the_payload_as_a_redirect_hop_is_not_followed(victim: MediaHost) -> None:
    # The first hop is a host the local stack allows; its redirect names 127.0.0.1, which is not on the list.
    request = MediaRequest(url=f"http://localhost:{victim.port}/hop", auth=BASIC)

    with pytest.raises(MediaError, match="backslash"):
        _streamer(("localhost",), loopback=True).open(request)

    assert [path for _, path, _ in victim.hits] == ["/hop"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_outside_the_local_stack_an_allowed_name_that_resolves_to_loopback_is_refused(
    victim: MediaHost, scheme: str
) -> None:
    request = MediaRequest(url=f"{scheme}://localhost:{victim.port}/cdn/x", headers=BEARER)

    with pytest.raises(MediaError, match=r"https|forbidden address") as caught:
        _streamer(("localhost",), loopback=False).open(request)

    assert not caught.value.retryable
    assert victim.hits == []


def test_on_the_local_stack_loopback_is_only_for_hosts_named_on_the_list(victim: MediaHost) -> None:
    # "media.example" is allowed through its parent entry only: it may not resolve to loopback even locally.
    policy = EgressPolicy(("example",), allow_loopback=True)
    session = checked_session(policy, resolver=_resolving({"media.example": "127.0.0.1"}))

    with pytest.raises(ForbiddenDestination, match="forbidden address"):
        session.get(f"http://media.example:{victim.port}/cdn/x", timeout=5)

    assert victim.hits == []


def test_every_address_of_a_name_is_checked(victim: MediaHost) -> None:
    # One public and one loopback answer: refused before any connection, whatever order they come in.
    resolver = _resolving({"cdn.example": ["93.184.215.14", "127.0.0.1"]})
    session = checked_session(EgressPolicy(("cdn.example",)), resolver=resolver)

    with pytest.raises(ForbiddenDestination, match="forbidden address"):
        session.get(f"https://cdn.example:{victim.port}/cdn/x", timeout=5)

    assert victim.hits == []


def test_the_connection_goes_to_the_address_that_was_checked_with_the_name_kept(victim: MediaHost) -> None:
    # One resolution per connection, checked and then used: nothing asks DNS again between check and connect
    # (DNS rebinding), and the request still names the host it is for.
    lookups: list[str] = []
    resolver = _resolving({"media.example": "127.0.0.1"}, lookups)
    session = checked_session(EgressPolicy(("media.example",), allow_loopback=True), resolver=resolver)

    response = session.get(f"http://media.example:{victim.port}/cdn/x", timeout=5)

    assert response.status_code == 200 and response.content == b"internal data"
    assert lookups == ["media.example"]
    assert victim.hits == [("media.example", "/cdn/x", None)]


def test_the_connection_refuses_a_host_off_the_list_whatever_parsed_the_url(victim: MediaHost) -> None:
    # The connect-time check reads the host urllib3 opens the socket for, not any URL parser's opinion.
    session = checked_session(EgressPolicy(("allowed.host",), allow_loopback=True))

    with pytest.raises(ForbiddenDestination, match="allow-list"):
        session.get(f"http://127.0.0.1:{victim.port}\\@allowed.host/x", auth=BASIC, timeout=5)

    assert victim.hits == []


def test_proxies_from_the_environment_are_ignored(victim: MediaHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{victim.port}")
    monkeypatch.setenv("NO_PROXY", "")
    resolver = _resolving({"media.example": "127.0.0.1"})
    session = checked_session(EgressPolicy(("media.example",), allow_loopback=True), resolver=resolver)

    assert session.get(f"http://media.example:{victim.port}/cdn/x", timeout=5).status_code == 200
    assert victim.hits == [("media.example", "/cdn/x", None)]  # a proxied request would carry the full URL


def _resolving(names: dict[str, str | list[str]], lookups: list[str] | None = None) -> Any:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        if lookups is not None:
            lookups.append(host)
        addresses = names.get(host)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        addresses = [addresses] if isinstance(addresses, str) else addresses
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve
