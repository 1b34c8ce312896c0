"""What the gateway may fetch: one URL parser, the host allow-list, and which addresses a connection may reach.

Parsed ONCE, by the parser that connects: ``urllib3.util.parse_url``, the one requests and urllib3 use to find the
host they open a socket to. ``urllib.parse`` reads some strings differently (``http://127.0.0.1:P\\@allowed/x`` is
``allowed`` to it and ``127.0.0.1`` to urllib3), so a URL is refused when it holds anything parsers disagree
about: a backslash, whitespace or a control character, a user name or password, a non-ASCII host, a port out of
range. The canonical form of the parsed URL (``Url.url``) is what is then requested, and the connection checks
the host it really connects to again (``gateway.egress_session``), so a parser mismatch cannot reach a socket.

Addresses are checked after resolution, on every address a name resolves to: loopback, private, link-local,
multicast, reserved, shared (CGNAT) and unspecified ones are refused, also when embedded in IPv6 (mapped, 6to4,
Teredo, NAT64). The local stack (``MEDIA_ALLOW_LOOPBACK``) additionally lets a host named exactly on the
allow-list resolve to loopback, and only there plain http. docs/decisions.md D19 says why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util.url import Url, parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PREFIX = re.compile(r"(?i)https?://")
# A host name or an IPv4/IPv6 literal, then an optional port: what a URL's authority may be, byte for byte.
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?")


class UnsafeUrl(ValueError):
    """A URL the gateway will not fetch or pass on; the message says why (safe to show, holds no secret)."""


class ForbiddenDestination(Exception):
    """A connection refused at connect time (an address or host the policy forbids). Deliberately not an
    ``OSError``: urllib3 and requests must not retry it or wrap it as a network error."""


def parse_strict(value: str) -> Url:
    """The one parser for URLs the gateway fetches or hands to a provider: urllib3's reading of ``value``,
    refusing every form that parsers read differently. Raises ``UnsafeUrl``."""
    if "\\" in value:
        raise UnsafeUrl("must not contain a backslash")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c.isspace() for c in value):
        raise UnsafeUrl("must not contain whitespace or control characters")
    prefix = _PREFIX.match(value)
    if prefix is None:
        raise UnsafeUrl("must be an http(s):// URL")
    authority = re.split(r"[/?#]", value[prefix.end() :], maxsplit=1)[0]
    if "@" in authority:
        raise UnsafeUrl("must not contain a user name or password")
    if not authority:
        raise UnsafeUrl("must have a host")
    if not authority.isascii():  # parse_url gives a Unicode host its IDNA form; other parsers may not
        raise UnsafeUrl("must have an ASCII host (write an international name in its xn-- form)")
    if not _AUTHORITY.fullmatch(authority):  # no percent-escapes or other characters that parsers decode apart
        raise UnsafeUrl("has an invalid host or port")
    try:
        url = parse_url(value)
    except (LocationParseError, ValueError):
        raise UnsafeUrl("is not a valid URL") from None
    if not url.host or url.auth is not None:
        raise UnsafeUrl("must have a host and no user name or password")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise UnsafeUrl("has a port out of range")
    try:  # urllib.parse is what requests reads the prepared URL with to pick the connection pool
        split = urlsplit(url.url)
        agree = (split.scheme, split.hostname, split.port) == (url.scheme, _bare(url.host), url.port)
    except ValueError:
        agree = False
    if not agree:
        raise UnsafeUrl("is read differently by different URL parsers")
    return url


def _bare(host: str) -> str:
    """``[::1]`` → ``::1``: urllib3 keeps IPv6 brackets in ``Url.host``, sockets and urllib.parse do not."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def origin(url: Url) -> tuple[str | None, str | None, int | None]:
    """Scheme, host and effective port: credentials go only to the origin they were issued for."""
    default = {"http": 80, "https": 443}.get(url.scheme or "")
    return url.scheme, url.host, url.port or default


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """``host`` is an allow-list entry or a subdomain of a named (non-IP) entry."""
    host = _bare(host).lower()
    return any(host == entry or (not _is_ip(entry) and host.endswith("." + entry)) for entry in allowed_hosts)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(_bare(text))
    except ValueError:
        return False
    return True


def address_forbidden(address: IPAddress) -> bool:
    """Anything but a globally routable unicast address: loopback, private, link-local, multicast, reserved,
    unspecified, shared (100.64/10), documentation and benchmarking ranges; IPv4 embedded in IPv6 is judged as
    the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_forbidden(address.ipv4_mapped)
        embedded = [address.sixtofour, address.teredo[1] if address.teredo else None]
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(e is not None and address_forbidden(e) for e in embedded):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


@dataclass(frozen=True)
class EgressPolicy:
    """Where media may be downloaded from. ``allow_loopback`` is the local stack's relaxation (never set by
    template.yaml): a host named exactly on the allow-list may resolve to loopback and be fetched over http."""

    allowed_hosts: tuple[str, ...]
    allow_loopback: bool = False

    def check_url(self, value: str) -> Url:
        """Parse and check a URL before anything is sent; raises ``UnsafeUrl`` naming the reason."""
        url = parse_strict(value)
        if url.scheme != "https" and not self.allow_loopback:
            raise UnsafeUrl("must be https")
        if not host_allowed(url.host or "", self.allowed_hosts):
            raise UnsafeUrl(f"host {url.host!r} is not on the media allow-list")
        return url

    def check_connect(self, scheme: str, host: str, addresses: Iterable[IPAddress]) -> None:
        """At connect time, with the addresses the one resolution gave: the host the socket is for must be on the
        allow-list and every address must be public (or loopback for an exactly allow-listed host on the local
        stack, the only case where plain http is allowed). Raises ``ForbiddenDestination``."""
        bare = _bare(host).lower()
        if not host_allowed(bare, self.allowed_hosts):
            raise ForbiddenDestination(f"host {host!r} is not on the media allow-list")
        addresses = list(addresses)
        if not addresses:
            raise ForbiddenDestination(f"host {host!r} resolved to no address")
        loopback_ok = self.allow_loopback and bare in self.allowed_hosts
        for address in addresses:
            if loopback_ok and address.is_loopback:
                continue
            if address_forbidden(address):
                raise ForbiddenDestination(f"host {host!r} resolves to a forbidden address")
        if scheme != "https" and not (loopback_ok and all(a.is_loopback for a in addresses)):
            raise ForbiddenDestination("plain http is allowed only to the local stack's loopback hosts")
