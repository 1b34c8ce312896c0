from __future__ import annotations

import base64
import json

import pytest
from gateway.credentials import CredentialsCipher, Secrets, hint


class FakeKms:
    """Records calls; 'encrypts' by wrapping the plaintext with its context so decrypt can check it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encrypt(self, KeyId: str, Plaintext: bytes, EncryptionContext: dict) -> dict:
        self.calls.append("encrypt")
        return {"CiphertextBlob": json.dumps({"ctx": EncryptionContext, "p": Plaintext.decode()}).encode()}

    def decrypt(self, CiphertextBlob: bytes, EncryptionContext: dict) -> dict:
        self.calls.append("decrypt")
        blob = json.loads(CiphertextBlob)
        if blob["ctx"] != EncryptionContext:
            raise PermissionError("InvalidCiphertextException")
        return {"Plaintext": blob["p"].encode()}


def test_round_trip_and_the_cache_saves_kms_calls() -> None:
    kms, now = FakeKms(), [0.0]
    cipher = CredentialsCipher(kms=kms, key_id="k", ttl_seconds=60, clock=lambda: now[0])
    ciphertext = cipher.encrypt("acme", "ch_1", {"auth_token": "s3cret-value"})
    fresh = CredentialsCipher(kms=kms, key_id="k", ttl_seconds=60, clock=lambda: now[0])
    assert fresh.decrypt("acme", "ch_1", ciphertext) == {"auth_token": "s3cret-value"}
    assert fresh.decrypt("acme", "ch_1", ciphertext) == {"auth_token": "s3cret-value"}
    assert kms.calls == ["encrypt", "decrypt"]
    now[0] = 61.0
    fresh.decrypt("acme", "ch_1", ciphertext)
    assert kms.calls == ["encrypt", "decrypt", "decrypt"]


def test_ciphertext_is_bound_to_tenant_and_channel() -> None:
    cipher = CredentialsCipher(kms=FakeKms(), key_id="k", ttl_seconds=0)
    ciphertext = cipher.encrypt("acme", "ch_1", {"auth_token": "s3cret-value"})
    with pytest.raises(PermissionError):
        CredentialsCipher(kms=cipher.kms, key_id="k", ttl_seconds=0).decrypt("evil", "ch_1", ciphertext)
    assert base64.b64decode(ciphertext)


def test_secrets_never_print() -> None:
    secrets = Secrets(auth_token="s3cret-value")
    assert "s3cret" not in repr(secrets) and "s3cret" not in str(secrets) and "s3cret" not in f"{secrets}"


@pytest.mark.parametrize(("secret", "shown"), [("abcdefghijkl1234", "••••1234"), ("short", "••••"), ("", None)])
def test_hint_shows_at_most_the_last_four_of_long_secrets(secret: str, shown: str | None) -> None:
    assert hint(secret) == shown
