"""The local gateway's HTTP server over a real socket: body framing (Content-Length, chunked) and the access log."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from local.apigw import HttpRequest, HttpResponse, json_response
from local.http_gateway import MAX_BODY_BYTES, LocalHttpServer, redacted_target, serve_in_thread


class Recorder:
    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return json_response(200, {"length": len(request.body)})


@pytest.fixture
def server() -> Iterator[tuple[LocalHttpServer, Recorder]]:
    app = Recorder()
    http = LocalHttpServer(("127.0.0.1", 0), app)
    serve_in_thread(http, "test-http")
    yield http, app
    http.shutdown()
    http.server_close()


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, end our side (so a server reading to EOF gets EOF rather than waiting), read the answer."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def post(headers: str, body: bytes = b"abc") -> bytes:
    return f"POST /webhooks/x HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize(
    "headers",
    [
        "Content-Length: -1\r\n",
        "Content-Length: -100\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: +3\r\n",
        "Content-Length: 3, 3\r\n",
        "Content-Length: 0x3\r\n",
        "Content-Length: ³\r\n",
        "Content-Length: 3\r\nContent-Length: 2\r\n",
        "Transfer-Encoding: chunked\r\n",  # the body "abc" is no chunk size
    ],
    ids=["minus-one", "negative", "word", "plus", "list", "hex", "superscript", "two-lengths", "bad-chunk"],
)
def test_a_length_that_is_not_a_plain_number_is_400_and_reaches_no_handler(
    server: tuple[LocalHttpServer, Recorder], headers: str
) -> None:
    http, app = server

    answer = exchange(http.port, post(headers))

    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert app.requests == []


def test_a_negative_chunk_size_is_400(server: tuple[LocalHttpServer, Recorder]) -> None:
    http, app = server

    answer = exchange(http.port, post("Transfer-Encoding: chunked\r\n", b"-1\r\nabc\r\n0\r\n\r\n"))

    assert answer.startswith(b"HTTP/1.1 400 ") and app.requests == []


@pytest.mark.parametrize("length", [str(MAX_BODY_BYTES + 1), "9" * 30])
def test_a_length_past_the_cap_is_still_413(server: tuple[LocalHttpServer, Recorder], length: str) -> None:
    http, app = server

    answer = exchange(http.port, post(f"Content-Length: {length}\r\n"))

    assert answer.startswith(b"HTTP/1.1 413 ") and app.requests == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [("Content-Length: 3\r\n", b"abc"), ("Content-Length: 003\r\n", b"abc"), ("", b""),
     ("Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n")],
)
def test_well_framed_bodies_are_read_exactly(
    server: tuple[LocalHttpServer, Recorder], headers: str, body: bytes
) -> None:
    http, app = server

    answer = exchange(http.port, post(headers, body))

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert [r.body for r in app.requests] == [body.split(b"\r\n")[1] if b"\r\n" in body else body]


def test_the_access_log_never_holds_a_verify_token(
    server: tuple[LocalHttpServer, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    http, app = server
    caplog.set_level(logging.INFO, logger="local.gateway")
    query = "hub.mode=subscribe&hub.verify_token=vt-secret-4711&hub.challenge=1158201444"

    answer = exchange(http.port, f"GET /webhooks/meta?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert app.requests[0].query_string == query  # the handler still gets the token
    lines = [r.getMessage() for r in caplog.records if r.name == "local.gateway"]
    assert any("/webhooks/meta?" in line and "hub.challenge=1158201444" in line for line in lines), lines
    assert not any("vt-secret-4711" in line for line in lines), lines


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/m?hub.verify_token=s&hub.challenge=1", "/m?hub.verify_token=REDACTED&hub.challenge=1"),
        ("/x?hub%2Everify%5Ftoken=s", "/x?hub%2Everify%5Ftoken=REDACTED"),
        ("/x?api_key=s&access_token=t&limit=5", "/x?api_key=REDACTED&access_token=REDACTED&limit=5"),
        ("/x?cursor=abc&flag", "/x?cursor=abc&flag"),
        ("/v1/conversations", "/v1/conversations"),
    ],
)
def test_secret_looking_query_values_are_redacted(target: str, logged: str) -> None:
    assert redacted_target(target) == logged
