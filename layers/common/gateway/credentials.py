"""Channel credentials: KMS-encrypted at rest, bound to their tenant and channel, cached briefly once decrypted.

The encryption context {tenant_id, channel_id} means a ciphertext copied into another tenant's item cannot be
decrypted there. Decrypted values live only in this process's memory, for ``credentials_cache_ttl_seconds``,
so a warm webhook needs no KMS call. They are never logged: ``Secrets.__repr__`` hides them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.aws import client as aws_client
from gateway.config import get_settings


class Secrets(dict[str, str]):
    """A dict of secret values that refuses to print them."""

    def __repr__(self) -> str:
        return "Secrets(" + ", ".join(f"{k}=***" for k in self) + ")"

    __str__ = __repr__


def hint(secret: str | None) -> str | None:
    """What a response may show of a secret: the last 4 characters, only when the secret is long enough."""
    if not secret:
        return None
    return "••••" + (secret[-4:] if len(secret) >= 12 else "")


class CredentialsCipher:
    def __init__(
        self,
        kms: Any = None,
        key_id: str | None = None,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = get_settings()
        self._kms = kms
        self._key_id = key_id or settings.credentials_key_id
        self._ttl = settings.credentials_cache_ttl_seconds if ttl_seconds is None else ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Secrets]] = {}
        self._lock = threading.Lock()

    @property
    def kms(self) -> Any:
        if self._kms is None:
            self._kms = aws_client("kms")
        return self._kms

    @staticmethod
    def _context(tenant_id: str, channel_id: str) -> dict[str, str]:
        return {"tenant_id": tenant_id, "channel_id": channel_id}

    def encrypt(self, tenant_id: str, channel_id: str, secrets: Mapping[str, str]) -> str:
        plaintext = json.dumps(dict(secrets), separators=(",", ":"), sort_keys=True).encode()
        answer = self.kms.encrypt(
            KeyId=self._key_id,
            Plaintext=plaintext,
            EncryptionContext=self._context(tenant_id, channel_id),
        )
        ciphertext = base64.b64encode(answer["CiphertextBlob"]).decode()
        self._remember(tenant_id, channel_id, ciphertext, Secrets(secrets))
        return ciphertext

    def decrypt(self, tenant_id: str, channel_id: str, ciphertext: str) -> Secrets:
        key = self._cache_key(tenant_id, channel_id, ciphertext)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        answer = self.kms.decrypt(
            CiphertextBlob=base64.b64decode(ciphertext),
            EncryptionContext=self._context(tenant_id, channel_id),
        )
        secrets = Secrets(json.loads(answer["Plaintext"]))
        self._remember(tenant_id, channel_id, ciphertext, secrets)
        return secrets

    def _remember(self, tenant_id: str, channel_id: str, ciphertext: str, secrets: Secrets) -> None:
        with self._lock:
            if len(self._cache) > 1024:  # bounded: a warm function serves a handful of channels
                self._cache.clear()
            self._cache[self._cache_key(tenant_id, channel_id, ciphertext)] = (self._clock() + self._ttl, secrets)

    @staticmethod
    def _cache_key(tenant_id: str, channel_id: str, ciphertext: str) -> str:
        return hashlib.sha256(f"{tenant_id}\x1f{channel_id}\x1f{ciphertext}".encode()).hexdigest()
