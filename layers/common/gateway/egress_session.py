"""A requests session whose connections enforce an ``EgressPolicy`` at the socket (imported only where media is
fetched: it loads requests).

The check and the connect share ONE name resolution: the connection resolves its host, checks the host against
the allow-list and every address against the policy, and then connects to one of exactly those addresses. A
name that answers a public address to a first lookup and a private one to a second (DNS rebinding) never gets
a second lookup. Everything else is urllib3's own: the TLS handshake still sends the host name as SNI and
verifies the certificate against it, and requests still sends ``Host: <name>``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from gateway.egress import EgressPolicy, ForbiddenDestination

Resolver = Callable[[str, int], list[tuple[Any, ...]]]


def system_resolver(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)


class _CheckedConnectionMixin:
    """Replaces urllib3's ``_new_conn``: resolve once, check, connect to a checked address."""

    policy: EgressPolicy
    resolver: Resolver
    scheme: str

    # Provided by HTTPConnection.
    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            infos = self.resolver(self._dns_host, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error  # type: ignore[arg-type]
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        self.policy.check_connect(self.scheme, self._dns_host, addresses)
        last: OSError | None = None
        for address in addresses:
            try:
                sock = create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from error
            except OSError as error:
                last = error
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")  # type: ignore[arg-type]


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: EgressPolicy, resolver: Resolver) -> None:
        self._policy, self._resolver = policy, resolver
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        checks = {"policy": self._policy, "resolver": staticmethod(self._resolver)}
        http = type("CheckedHTTPConnection", (_CheckedConnectionMixin, HTTPConnection), {**checks, "scheme": "http"})
        https = type(
            "CheckedHTTPSConnection", (_CheckedConnectionMixin, HTTPSConnection), {**checks, "scheme": "https"}
        )
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise ForbiddenDestination("media is never fetched through a proxy")


def checked_session(policy: EgressPolicy, resolver: Resolver = system_resolver) -> requests.Session:
    """A session for ``policy``: every connection checked at connect time; no proxies, no ``.netrc`` credentials
    or other settings from the environment (``trust_env`` off)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _CheckedAdapter(policy, resolver)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
