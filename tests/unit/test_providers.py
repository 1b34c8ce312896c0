"""Provider adapters against a tiny local HTTP server that answers like the provider would on errors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gateway.config import Settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel, ChannelStatus, Provider
from gateway.domain.errors import CredentialsRejected, ProviderError, ProviderUnavailable
from gateway.providers.meta import MetaProvider
from gateway.providers.twilio import TwilioProvider

ANSWERS: dict[str, tuple[int, dict]] = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS["next"]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _channel(provider: Provider) -> Channel:
    return Channel(
        tenant_id="acme",
        channel_id="ch_1",
        provider=provider,
        name="Main",
        phone_number="+14155238886",
        status=ChannelStatus.ACTIVE,
        created_at="t",
        updated_at="t",
        credentials_ciphertext="x",
        account_sid="AC" + "0" * 32,
        phone_number_id="106540352242922",
    )


def _twilio(base: str) -> TwilioProvider:
    return TwilioProvider(Settings(twilio_api_base_url=base))


def _meta(base: str) -> MetaProvider:
    return MetaProvider(Settings(meta_graph_base_url=base))


def test_twilio_authenticate_error_is_rejected_credentials(server: str) -> None:
    ANSWERS["next"] = (401, {"code": 20003, "message": "Authenticate", "status": 401})
    with pytest.raises(CredentialsRejected) as caught:
        _twilio(server).health_check(_channel(Provider.TWILIO), Secrets(auth_token="t"))
    assert caught.value.provider_code == "20003"
    assert "Authenticate" in caught.value.message


def test_meta_expired_token_is_rejected_credentials(server: str) -> None:
    ANSWERS["next"] = (400, {"error": {"message": "Error validating access token", "code": 190}})
    with pytest.raises(CredentialsRejected):
        _meta(server).health_check(_channel(Provider.META), Secrets(access_token="t"))


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retryable_unavailability(server: str, status: int) -> None:
    ANSWERS["next"] = (status, {"error": {"message": "down"}})
    with pytest.raises(ProviderUnavailable) as caught:
        _meta(server).health_check(_channel(Provider.META), Secrets(access_token="t"))
    assert caught.value.retryable


def test_other_refusals_are_provider_errors(server: str) -> None:
    ANSWERS["next"] = (400, {"error": {"message": "Unsupported get request", "code": 100}})
    with pytest.raises(ProviderError) as caught:
        _meta(server).health_check(_channel(Provider.META), Secrets(access_token="t"))
    assert not isinstance(caught.value, (CredentialsRejected, ProviderUnavailable))
    assert caught.value.provider_code == "100"


def test_unreachable_provider_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProviderUnavailable):
        _twilio(f"http://127.0.0.1:{port}").health_check(_channel(Provider.TWILIO), Secrets(auth_token="t"))


def test_meta_health_report(server: str) -> None:
    ANSWERS["next"] = (
        200,
        {"id": "1", "verified_name": "Acme", "quality_rating": "GREEN", "throughput": {"level": "STANDARD"}},
    )
    report = _meta(server).health_check(_channel(Provider.META), Secrets(access_token="t"))
    assert report["verified_name"] == "Acme" and report["quality_rating"] == "GREEN"
