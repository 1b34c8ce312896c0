"""The media egress check (gateway/egress.py): the URL is read by the parser that connects, every form parsers
read apart is refused, and addresses are judged after resolution (docs/decisions.md D19)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
import requests
from gateway.egress import (
    EgressPolicy,
    ForbiddenDestination,
    UnsafeUrl,
    address_forbidden,
    host_allowed,
    origin,
    parse_strict,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

PAYLOAD = "http://127.0.0.1:8080\\@allowed.host/x"
DEFAULT_PORTS = {"http": 80, "https": 443}


def connects_to(url: str) -> tuple[str, str, int]:
    """The (scheme, host, port) requests opens a connection to for ``url``: its own preparation of the URL and
    the adapter's choice of connection pool, exactly as ``Session.get`` does them."""
    prepared = requests.Request("GET", url).prepare()
    params, _ = HTTPAdapter().build_connection_pool_key_attributes(prepared, True, None)
    scheme, host = params["scheme"], params["host"]
    return scheme, host.lower(), params["port"] or DEFAULT_PORTS[scheme]


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


# Pieces that parsers are known to read apart: userinfo and its separators, backslashes, percent-escapes,
# brackets, fullwidth and ideographic look-alikes of "." "@" "/", whitespace and control characters.
TRICKY = st.sampled_from(
    ["@", ":", "\\", "/", "?", "#", "%", "%2e", "%40", "%5c", "[", "]", ".", "..", " ", "\t", "\n", "\x00", "\x7f",
     "．", "＠", "／", "。", "é", "\u200b", "127.0.0.1", "localhost", "allowed.host", "8080", "::1", "_", "-"]
)
LABEL = st.text("abcxyz019-_", min_size=1, max_size=4)
AUTHORITY = st.lists(st.one_of(TRICKY, LABEL), max_size=8).map("".join)
# Mostly well-formed authorities with one tricky piece somewhere, so that many URLs come close to passing.
NEAR = st.builds(
    lambda labels, port, trick, where: (lambda a: a[:where] + trick + a[where:])(".".join(labels) + port),
    st.lists(LABEL, min_size=1, max_size=3),
    st.sampled_from(["", ":8080", ":", ":0443"]),
    st.one_of(st.just(""), TRICKY),
    st.integers(0, 20),
)
URLS = st.builds(
    lambda scheme, authority, rest: f"{scheme}://{authority}{rest}",
    st.sampled_from(["http", "https", "HTTPS", "hTTp"]),
    st.one_of(AUTHORITY, NEAR),
    st.lists(TRICKY, max_size=4).map("".join),
)


@settings(max_examples=500)
@given(URLS)
@example(PAYLOAD)
@example("https://127.0.0.1:8080\\@allowed.host/x")
@example("https://allowed.host\\@127.0.0.1/x")
@example("https://allowed.host%2f@127.0.0.1/")
@example("https://@allowed.host/")
@example("https://allowed.host:0/")
@example("https://allowed.host．/")
@example("https://[::1]:8080/x")
def test_an_accepted_url_names_one_host_to_every_parser(value: str) -> None:
    try:
        url = parse_strict(value)
    except UnsafeUrl:
        return
    checked = (url.scheme, _bare(url.host or ""), origin(url)[2])
    # What the session really connects to, given the canonical form we request or the original string.
    assert connects_to(url.url) == checked
    assert connects_to(value) == checked
    assert (urlsplit(value).hostname, urlsplit(value).port or DEFAULT_PORTS[url.scheme or ""]) == checked[1:]


@given(URLS)
def test_the_policy_accepts_only_allowed_hosts_and_https(value: str) -> None:
    policy = EgressPolicy(("allowed.host",))
    try:
        url = policy.check_url(value)
    except UnsafeUrl:
        return
    assert url.scheme == "https" and host_allowed(connects_to(value)[1], ("allowed.host",))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (PAYLOAD, "backslash"),
        ("https://allowed.host\\@127.0.0.1/x", "backslash"),
        ("https://allowed.host/\\evil", "backslash"),
        ("https://user:pw@allowed.host/x", "user name"),
        ("https://@allowed.host/x", "user name"),
        ("https://allowed.host%2f@127.0.0.1/x", "user name"),
        ("https://allowed.host/a b", "whitespace"),
        ("https://allowed.host/\x00", "control"),
        ("https://allowed.host\t/", "control"),
        ("https://allowed.host/\u2028", "whitespace"),
        ("https://bücher.example/x", "ASCII"),
        ("https://allowed%2ehost/x", "invalid host"),
        ("https://allowed.host:0/x", "port"),
        ("https://allowed.host:99999/x", "valid URL"),
        ("ftp://allowed.host/x", "http"),
        ("//allowed.host/x", "http"),
        ("https:///x", "host"),
    ],
)
def test_forms_that_parsers_read_apart_are_refused(value: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        parse_strict(value)


@pytest.mark.parametrize(
    ("value", "allow_loopback", "reason"),
    [
        ("http://allowed.host/x", False, "https"),
        ("https://evil.example/x", False, "allow-list"),
        ("https://allowed.host.evil.example/x", False, "allow-list"),
        ("https://notallowed.host/x", False, "allow-list"),
        (PAYLOAD, True, "backslash"),
    ],
)
def test_the_policy_refuses(value: str, allow_loopback: bool, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        EgressPolicy(("allowed.host",), allow_loopback=allow_loopback).check_url(value)


def test_subdomains_of_named_hosts_are_allowed_but_not_of_addresses() -> None:
    allowed = ("twiliocdn.com", "127.0.0.1")
    assert host_allowed("media.twiliocdn.com", allowed) and host_allowed("127.0.0.1", allowed)
    assert not host_allowed("x.127.0.0.1", allowed) and not host_allowed("eviltwiliocdn.com", allowed)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


FORBIDDEN = [
    "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "2002:7f00:1::", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "::7f00:1", "2001:db8::1",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_internal_addresses_are_forbidden(address: str) -> None:
    assert address_forbidden(_ip(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "157.240.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not address_forbidden(_ip(address))


@given(st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                        "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4", "0.0.0.0/8", "fc00::/7", "fe80::/10",
                        "ff00::/8", "::ffff:7f00:0/104", "::ffff:a00:0/104"]),
       st.integers(min_value=0))
def test_every_address_of_an_internal_range_is_forbidden(network: str, offset: int) -> None:
    net = ipaddress.ip_network(network)
    assert address_forbidden(net[offset % net.num_addresses])


PUBLIC = [_ip("93.184.215.14")]
LOOPBACK = [_ip("127.0.0.1")]


def test_connect_check_needs_a_public_address_for_every_answer() -> None:
    policy = EgressPolicy(("cdn.example",))
    policy.check_connect("https", "cdn.example", PUBLIC)
    for addresses in (LOOPBACK, [*PUBLIC, _ip("10.0.0.1")], [_ip("169.254.169.254")], []):
        with pytest.raises(ForbiddenDestination):
            policy.check_connect("https", "cdn.example", addresses)


def test_connect_check_reads_the_host_of_the_socket() -> None:
    policy = EgressPolicy(("allowed.host",), allow_loopback=True)
    with pytest.raises(ForbiddenDestination, match="allow-list"):
        policy.check_connect("http", "127.0.0.1", LOOPBACK)
    with pytest.raises(ForbiddenDestination, match="allow-list"):
        policy.check_connect("https", "allowed.host.", PUBLIC)  # a trailing dot is another name to DNS


def test_loopback_and_http_only_on_the_local_stack_for_exactly_named_hosts() -> None:
    local = EgressPolicy(("localhost", "example"), allow_loopback=True)
    local.check_connect("http", "localhost", LOOPBACK)
    with pytest.raises(ForbiddenDestination, match="forbidden address"):
        local.check_connect("http", "sub.example", LOOPBACK)  # allowed through its parent only
    with pytest.raises(ForbiddenDestination, match="plain http"):
        local.check_connect("http", "example", PUBLIC)  # http leaves the machine: never
    with pytest.raises(ForbiddenDestination, match="forbidden address"):
        local.check_connect("https", "localhost", [_ip("10.0.0.1")])  # loopback only, not private ranges
    deployed = EgressPolicy(("localhost",))
    with pytest.raises(ForbiddenDestination, match="forbidden address"):
        deployed.check_connect("https", "localhost", LOOPBACK)


def test_only_the_local_stack_turns_on_loopback() -> None:
    from pathlib import Path

    from gateway.config import Settings

    assert Settings.from_env({}).media_allow_loopback is False
    assert Settings.from_env({"MEDIA_ALLOW_LOOPBACK": "true"}).media_allow_loopback is True
    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    assert "MEDIA_ALLOW_LOOPBACK" not in template  # no deployment has it


@settings(max_examples=500)
@given(st.one_of(st.text(), URLS, st.builds(lambda s, t: f"{s}://{t}", st.sampled_from(["http", "https"]), st.text())))
def test_any_string_is_either_a_url_or_a_refusal_with_a_reason(value: str) -> None:
    try:
        parse_strict(value)
    except UnsafeUrl as refusal:
        assert str(refusal)
