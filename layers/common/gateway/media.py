"""Streaming media from a provider to S3 in constant memory.

The response body is read in small chunks through a file-like wrapper that hashes, counts and enforces the
size limit as the bytes pass; boto3's transfer manager uploads it as a multipart upload with bounded
concurrency, so memory stays at about ``part size × (concurrency + 1)`` whatever the file size.

Redirects are followed by hand so that every hop is checked (``gateway.egress``: one parser, the allow-list,
https) and credentials go only to the origin they were issued for (Twilio's API host answers with a redirect to
a CDN that must not see the account's auth token). The session's connections check the host and every resolved
address again at connect time (``gateway.egress_session``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from urllib3 import exceptions as urllib3_errors

from gateway.aws import client as aws_client
from gateway.domain.media import serving_headers
from gateway.egress import EgressPolicy, ForbiddenDestination, UnsafeUrl, origin

if TYPE_CHECKING:
    import requests
    from urllib3.util.url import Url

MB = 1024 * 1024
# WhatsApp's limits per type (PROTOCOLS §10); anything else is treated as a document.
SIZE_LIMITS = {
    "image": 5 * MB,
    "audio": 16 * MB,
    "video": 16 * MB,
    "sticker": 500 * 1024,
    "document": 100 * MB,
}
PART_SIZE = 5 * MB  # S3's minimum part size: the least memory per part in flight
MAX_CONCURRENCY = 2
MAX_REDIRECTS = 5
READ_CHUNK = 256 * 1024


class MediaError(Exception):
    """A media item that cannot be stored. ``retryable`` faults (network, 5xx, S3) go back to the stream."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class MediaRequest:
    """Where to download one media item from and with which credentials."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    expected_sha256: str | None = None
    content_type: str | None = None

    def __repr__(self) -> str:  # never print credentials
        return f"MediaRequest(host={urlsplit(self.url).hostname!r}, has_auth={bool(self.auth or self.headers)})"


@dataclass(frozen=True)
class StoredMedia:
    key: str
    size: int
    sha256: str
    content_type: str


def sha256_matches(expected: str, digest: bytes) -> bool:
    """Meta gives the hash as hex (Media API) or base64 (webhook payloads): accept either spelling."""
    expected = expected.strip()
    return hmac.compare_digest(expected.lower(), digest.hex()) or hmac.compare_digest(
        expected, base64.b64encode(digest).decode()
    )


def size_limit(kind: str) -> int:
    return SIZE_LIMITS.get(kind, SIZE_LIMITS["document"])


class _CountingReader(io.RawIOBase):
    """File-like view of a streamed response that hashes, counts and stops at the size limit.

    Reads the urllib3 response under ``requests`` directly (``iter_content`` adds a generator hop per chunk and
    made the download ~5x slower than the socket): one read of what the uploader asks for, decoded if the
    provider compressed it. The uploader asks a part at a time; a read of everything is done in chunks that stop
    at the limit, so no read holds more than a part or the limit in memory."""

    def __init__(self, response: requests.Response, limit: int) -> None:
        self._raw = response.raw
        self._limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        # A short read means the end: s3transfer takes each read of a non-seekable stream as one whole part.
        pieces, wanted = [], size
        while wanted > 0:
            try:
                data = self._raw.read(wanted, decode_content=True)
            except (urllib3_errors.HTTPError, OSError) as error:  # reset, read timeout, body shorter than announced
                raise MediaError(f"download interrupted: {type(error).__name__}", retryable=True) from error
            if not data:
                break
            self.size += len(data)
            if self.size > self._limit:
                raise MediaError(f"larger than the {self._limit // 1024} KB allowed for this media type")
            self.digest.update(data)
            pieces.append(data)
            wanted -= len(data)
        return b"".join(pieces)  # one piece: returned as it is, not copied

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


class MediaStreamer:
    def __init__(
        self,
        allowed_hosts: tuple[str, ...],
        bucket: str,
        *,
        allow_loopback: bool = False,
        s3: Any = None,
        timeout: float = 10.0,
    ) -> None:
        self.policy = EgressPolicy(allowed_hosts, allow_loopback=allow_loopback)
        self.bucket = bucket
        self._s3 = s3
        self._session: requests.Session | None = None
        self.timeout = timeout

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws_client("s3")
        return self._s3

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            from gateway.egress_session import checked_session

            self._session = checked_session(self.policy)
        return self._session

    def open(self, request: MediaRequest) -> requests.Response:
        """GET with redirects followed by hand: every hop checked, credentials only to the first origin."""
        import requests

        url = self._check(request.url)
        first = origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            same_origin = origin(url) == first
            try:
                response = self.session.get(
                    url.url,
                    headers=request.headers if same_origin else {},
                    auth=request.auth if same_origin else None,
                    stream=True,
                    allow_redirects=False,
                    timeout=self.timeout,
                )
            except ForbiddenDestination as error:
                raise MediaError(f"refused: {error}") from error
            except requests.RequestException as error:
                raise MediaError(f"download failed: {type(error).__name__}", retryable=True) from error
            if response.is_redirect or response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                response.close()
                if not location:
                    raise MediaError("redirect without a Location header")
                url = self._check(urljoin(url.url, location))
                continue
            if response.status_code >= 500 or response.status_code == 429:
                response.close()
                raise MediaError(f"provider answered {response.status_code}", retryable=True)
            if response.status_code != 200:
                response.close()
                raise MediaError(f"provider answered {response.status_code}")
            return response
        raise MediaError(f"more than {MAX_REDIRECTS} redirects")

    def _check(self, value: str) -> Url:
        try:
            return self.policy.check_url(value)
        except UnsafeUrl as error:
            raise MediaError(f"refused URL: {error}") from None

    def stream_to_s3(self, request: MediaRequest, key: str, *, kind: str) -> StoredMedia:
        """Download and upload in one pass. Verifies sha256 when the provider gave one (Meta)."""
        import requests
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        response = self.open(request)
        content_type = (
            (request.content_type or response.headers.get("Content-Type") or "application/octet-stream")
            .split(";")[0]
            .strip()
        )
        reader = _CountingReader(response, size_limit(kind))
        config = TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=MAX_CONCURRENCY,
            io_chunksize=READ_CHUNK,
        )
        # A non-seekable stream is read into memory a part at a time, and s3transfer holds a part from its read
        # until its upload ends under a semaphore of max_in_memory_upload_chunks (default 10: 50 MB at 5 MB parts).
        # The semaphore, not max_concurrency, is what bounds the uploads in flight: at 1 it serialised them (0.7x
        # the baseline's throughput). At MAX_CONCURRENCY, peak RSS growth is ~3 parts (~26 MB) at about the
        # baseline's throughput (docs/BENCHMARKS.md).
        config.max_in_memory_upload_chunks = MAX_CONCURRENCY
        try:
            self.s3.upload_fileobj(
                reader,
                self.bucket,
                key,
                ExtraArgs={
                    "ContentType": content_type,
                    # The declared type is kept; what is not safe inline is marked a download even for a URL
                    # presigned elsewhere without overrides (event consumers get the bucket and key).
                    "ContentDisposition": serving_headers(content_type)[1],
                    "ServerSideEncryption": "AES256",
                },
                Config=config,
            )
        except MediaError:
            raise
        except (BotoCoreError, ClientError) as error:
            raise MediaError(f"S3 upload failed: {type(error).__name__}", retryable=True) from error
        except requests.RequestException as error:  # the download broke off mid-body (reset, read timeout)
            raise MediaError(f"download interrupted: {type(error).__name__}", retryable=True) from error
        except Exception as error:  # the reader's errors arrive wrapped by the transfer manager
            cause = error.__cause__ or error.__context__
            if isinstance(cause, MediaError):
                raise cause from error
            if isinstance(cause, requests.RequestException):
                raise MediaError(f"download interrupted: {type(cause).__name__}", retryable=True) from error
            raise
        finally:
            response.close()
        sha256 = reader.digest.hexdigest()
        if request.expected_sha256 and not sha256_matches(request.expected_sha256, reader.digest.digest()):
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            raise MediaError("sha256 of the downloaded bytes does not match the provider's")
        return StoredMedia(key=key, size=reader.size, sha256=sha256, content_type=content_type)
