"""Media streaming against a real local HTTP source and S3 in moto.

The source behaves like Twilio: the API host demands Basic auth and redirects to a CDN host (another netloc)
that rejects any Authorization header, so forwarding credentials across the redirect fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.media import MediaError, MediaRequest, MediaStreamer
from moto import mock_aws

from local.testing import MediaHost

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)
LARGE = os.urandom(12 * 1024 * 1024 + 321)  # three multipart parts, the last one short
BASIC = "Basic " + base64.b64encode(b"ACsid:auth-token-value").decode()


def _chunked(handler: Any) -> None:  # chunks of odd sizes that never line up with the 5 MB parts
    handler.send_response(200)
    handler.send_header("Content-Type", "application/pdf")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    sizes, offset = random.Random(7), 0
    while offset < len(LARGE):
        piece = LARGE[offset : offset + sizes.randint(1, 300_000)]
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        offset += len(piece)
    handler.wfile.write(b"0\r\n\r\n")


def _gzip(handler: Any) -> None:  # a CDN that compresses: the stored object is the media, not the gzip stream
    compressor = zlib.compressobj(wbits=31)
    body = compressor.compress(LARGE) + compressor.flush()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/pdf")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _short(handler: Any) -> None:  # the connection ends before the announced length
    handler.send_response(200)
    handler.send_header("Content-Type", "application/pdf")
    handler.send_header("Content-Length", str(len(LARGE)))
    handler.end_headers()
    handler.wfile.write(LARGE[: 6 * 1024 * 1024])
    handler.close_connection = True


def _loop(handler: Any) -> None:
    handler.send_response(302)
    handler.send_header("Location", "/loop")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.fixture(scope="module")
def source() -> Iterator[int]:
    files = {"ME1": (PAYLOAD, "image/jpeg"), "x": (PAYLOAD, "image/jpeg"), "page": (b"<script>1</script>", "text/html")}
    routes = {"/chunked": _chunked, "/gzip": _gzip, "/short": _short, "/loop": _loop}
    with MediaHost(files, basic=BASIC, routes=routes) as host:
        yield host.port


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="media")
        yield client


def _streamer(s3: object) -> MediaStreamer:
    return MediaStreamer(("127.0.0.1", "localhost"), "media", allow_loopback=True, s3=s3)


def test_basic_auth_then_redirect_without_credentials(source: int, s3: object) -> None:
    request = MediaRequest(url=f"http://127.0.0.1:{source}/api/ME1", auth=("ACsid", "auth-token-value"))
    stored = _streamer(s3).stream_to_s3(request, "acme/cv/msg/0", kind="image")
    body = s3.get_object(Bucket="media", Key="acme/cv/msg/0")  # type: ignore[attr-defined]
    assert body["Body"].read() == PAYLOAD
    assert body["ContentType"] == "image/jpeg" and body["ContentDisposition"] == "inline"
    assert stored.size == len(PAYLOAD)
    assert stored.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize(
    "expected",
    [hashlib.sha256(PAYLOAD).hexdigest(), base64.b64encode(hashlib.sha256(PAYLOAD).digest()).decode()],
    ids=["hex", "base64"],
)
def test_provider_sha256_in_hex_or_base64_is_checked(source: int, s3: object, expected: str) -> None:
    request = MediaRequest(url=f"http://127.0.0.1:{source}/cdn/x", expected_sha256=expected)
    assert _streamer(s3).stream_to_s3(request, "k", kind="document").size == len(PAYLOAD)


def test_sha256_mismatch_fails_and_leaves_no_object(source: int, s3: object) -> None:
    request = MediaRequest(url=f"http://127.0.0.1:{source}/cdn/x", expected_sha256="0" * 64)
    with pytest.raises(MediaError, match="sha256"):
        _streamer(s3).stream_to_s3(request, "bad", kind="document")
    assert "Contents" not in s3.list_objects_v2(Bucket="media")  # type: ignore[attr-defined]


def test_size_limit_enforced_while_streaming(source: int, s3: object) -> None:
    request = MediaRequest(url=f"http://127.0.0.1:{source}/cdn/x")
    with pytest.raises(MediaError, match="larger than"):
        _streamer(s3).stream_to_s3(request, "big", kind="sticker")
    assert "Contents" not in s3.list_objects_v2(Bucket="media")  # type: ignore[attr-defined]


def test_a_type_a_browser_would_run_is_stored_as_a_download(source: int, s3: object) -> None:
    # Even a URL presigned elsewhere without overrides (an event consumer's) must not render it as a page.
    _streamer(s3).stream_to_s3(MediaRequest(url=f"http://127.0.0.1:{source}/cdn/page"), "page", kind="document")

    stored = s3.get_object(Bucket="media", Key="page")  # type: ignore[attr-defined]
    assert stored["ContentType"] == "text/html" and stored["ContentDisposition"] == "attachment"


def test_host_off_the_allow_list_is_never_fetched(source: int, s3: object) -> None:
    streamer = MediaStreamer(("api.twilio.com",), "media", allow_loopback=True, s3=s3)
    with pytest.raises(MediaError, match="allow-list") as caught:
        streamer.stream_to_s3(MediaRequest(url=f"http://127.0.0.1:{source}/cdn/x"), "k", kind="image")
    assert not caught.value.retryable


def test_redirect_hop_off_the_allow_list_is_refused(source: int, s3: object) -> None:
    streamer = MediaStreamer(("127.0.0.1",), "media", allow_loopback=True, s3=s3)  # the CDN hop goes to "localhost"
    request = MediaRequest(url=f"http://127.0.0.1:{source}/api/ME1", auth=("ACsid", "auth-token-value"))
    with pytest.raises(MediaError, match="allow-list"):
        streamer.stream_to_s3(request, "k", kind="image")


def test_redirect_loops_are_cut(source: int, s3: object) -> None:
    with pytest.raises(MediaError, match="redirects"):
        _streamer(s3).stream_to_s3(MediaRequest(url=f"http://127.0.0.1:{source}/loop"), "k", kind="image")


def test_credentials_never_print() -> None:
    request = MediaRequest(url="https://api.twilio.com/x", auth=("ACsid", "auth-token-value"))
    assert "auth-token-value" not in repr(request)


@pytest.mark.parametrize("path", ["/chunked", "/gzip"])
def test_chunked_or_compressed_bodies_are_stored_whole_across_parts(source: int, s3: object, path: str) -> None:
    expected = hashlib.sha256(LARGE).hexdigest()
    request = MediaRequest(url=f"http://127.0.0.1:{source}{path}", expected_sha256=expected)

    stored = _streamer(s3).stream_to_s3(request, "large", kind="document")

    assert (stored.size, stored.sha256) == (len(LARGE), expected)
    assert s3.get_object(Bucket="media", Key="large")["Body"].read() == LARGE  # type: ignore[attr-defined]


def test_a_body_cut_short_is_a_retryable_failure_that_stores_nothing(source: int, s3: object) -> None:
    with pytest.raises(MediaError, match="interrupted") as caught:
        _streamer(s3).stream_to_s3(MediaRequest(url=f"http://127.0.0.1:{source}/short"), "cut", kind="document")

    assert caught.value.retryable
    assert "Contents" not in s3.list_objects_v2(Bucket="media")  # type: ignore[attr-defined]
