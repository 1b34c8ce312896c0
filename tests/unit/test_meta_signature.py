"""X-Hub-Signature-256 (PROTOCOLS §9): HMAC-SHA256 over the exact raw bytes, constant time, fail closed."""

from __future__ import annotations

import hashlib
import hmac
import json

from gateway.providers import meta_webhook as mw
from hypothesis import assume, given
from hypothesis import strategies as s

from tests.meta_support import meta_bytes, sign

secrets_ = s.text(min_size=1, max_size=64)
bodies = s.binary(max_size=2048)


@given(body=bodies, secret=secrets_)
def test_a_correctly_signed_body_passes(body: bytes, secret: str) -> None:
    header = mw.sign(body, secret)
    assert header == sign(body, secret)  # the layer signs exactly as the reference does
    assert mw.signature_valid(body, mw.parse_signature(header), secret)


@given(body=bodies, other=bodies, secret=secrets_)
def test_a_signature_for_other_bytes_fails(body: bytes, other: bytes, secret: str) -> None:
    assume(body != other)
    assert not mw.signature_valid(other, mw.parse_signature(mw.sign(body, secret)), secret)


@given(body=bodies, secret=secrets_, other=secrets_)
def test_a_signature_made_with_another_secret_fails(body: bytes, secret: str, other: str) -> None:
    assume(secret != other)
    assert not mw.signature_valid(body, mw.parse_signature(mw.sign(body, other)), secret)


@given(body=bodies, secret=secrets_, data=s.data())
def test_exactly_the_right_header_passes(body: bytes, secret: str, data: s.DataObject) -> None:
    """Whatever header arrives, it passes iff it is the body's HMAC under the secret (hex in either case)."""
    right = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    header = data.draw(
        s.one_of(
            s.none(),
            s.text(max_size=100),
            s.from_regex(r"sha256=[0-9a-fA-F]{64}", fullmatch=True),
            s.sampled_from([f"sha256={right}", f"sha256={right.upper()}", f" sha256={right} ", f"sha256={right[:-1]}"]),
        )
    )
    accepted = mw.signature_valid(body, mw.parse_signature(header), secret)
    text = (header or "").strip()
    assert accepted == (text.startswith("sha256=") and text[len("sha256=") :].lower() == right)


@given(body=bodies, secret=secrets_, position=s.integers(min_value=0, max_value=63))
def test_any_single_changed_hex_digit_fails(body: bytes, secret: str, position: int) -> None:
    digits = list(mw.sign(body, secret).removeprefix("sha256="))
    digits[position] = "0" if digits[position] != "0" else "1"
    assert not mw.signature_valid(body, mw.parse_signature("sha256=" + "".join(digits)), secret)


def test_header_shapes() -> None:
    digest = "ab" * 32
    assert mw.parse_signature(f"sha256={digest}") == bytes.fromhex(digest)
    assert mw.parse_signature(f"sha256={digest.upper()}") == bytes.fromhex(digest)
    assert mw.parse_signature(f"  sha256={digest}\n") == bytes.fromhex(digest)
    for wrong in (
        None,
        "",
        digest,
        f"sha1={'ab' * 20}",
        f"sha256={digest[:-2]}",
        f"sha256={digest}00",
        f"sha256={digest},sha256={digest}",
        f"SHA256={digest}",
        f"sha256= {digest}",
    ):
        assert mw.parse_signature(wrong) is None, wrong


def test_no_secret_fails_closed() -> None:
    body = b"{}"
    digest = mw.parse_signature(mw.sign(body, ""))  # what an HMAC under the empty key would be
    assert not mw.signature_valid(body, digest, "")
    assert not mw.signature_valid(body, digest, None)
    assert not mw.signature_valid(body, None, "secret")


def test_non_ascii_is_verified_over_metas_escaped_bytes_never_a_reserialisation() -> None:
    payload = {"entry": [{"changes": [{"value": {"contacts": [{"profile": {"name": "Lucía Gómez 👋"}}]}}]}]}
    escaped = meta_bytes(payload)  # what Meta sends: \u00ed, \ud83d\udc4b
    assert b"\\u00ed" in escaped and escaped.isascii()
    header = sign(escaped, "app-secret")
    assert mw.signature_valid(escaped, mw.parse_signature(header), "app-secret")

    reserialised = json.dumps(json.loads(escaped), ensure_ascii=False).encode()  # same content, other bytes
    assert json.loads(reserialised) == json.loads(escaped)
    assert not mw.signature_valid(reserialised, mw.parse_signature(header), "app-secret")
    compact = json.dumps(json.loads(escaped), separators=(",", ":")).encode()
    assert not mw.signature_valid(compact, mw.parse_signature(header), "app-secret")
