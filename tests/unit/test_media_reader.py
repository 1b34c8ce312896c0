"""gateway.media's reader over a response body that arrives in short reads (sockets, decompressors and
chunked bodies all may): s3transfer takes each read of a non-seekable stream as one whole part, so the reader
must fill a read up to what was asked or to the end, never return less in the middle."""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace
from typing import Any

import pytest
from gateway.media import MediaError, _CountingReader
from hypothesis import given
from hypothesis import strategies as st


class _Trickle(io.RawIOBase):
    """A body that hands out at most ``step`` bytes a read, then raises ``error`` if given."""

    def __init__(self, data: bytes, step: int, error: Exception | None = None) -> None:
        self._data, self._step, self._error, self._offset = data, step, error, 0

    def read(self, size: int = -1, decode_content: bool = False) -> bytes:  # type: ignore[override]
        if self._offset >= len(self._data) and self._error is not None:
            raise self._error
        n = min(self._step, len(self._data) - self._offset, size if size >= 0 else self._step)
        chunk = self._data[self._offset : self._offset + n]
        self._offset += n
        return chunk


def _reader(raw: Any, limit: int = 10**9) -> _CountingReader:
    return _CountingReader(SimpleNamespace(raw=raw), limit)  # type: ignore[arg-type]


@given(data=st.binary(max_size=5000), step=st.integers(1, 700), part=st.integers(1, 2000))
def test_each_read_is_full_until_the_end(data: bytes, step: int, part: int) -> None:
    reader = _reader(_Trickle(data, step))

    reads = list(iter(lambda: reader.read(part), b""))

    assert b"".join(reads) == data
    assert all(len(r) == part for r in reads[:-1])
    assert reader.size == len(data)
    assert reader.digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_read_all_stops_at_the_limit() -> None:
    with pytest.raises(MediaError, match="larger than"):
        _reader(_Trickle(b"x" * 5000, 100), limit=4096).read()


def test_a_broken_body_is_a_retryable_media_error() -> None:
    from urllib3.exceptions import ProtocolError

    reader = _reader(_Trickle(b"abc", 2, ProtocolError("Connection broken: reset")))
    with pytest.raises(MediaError, match="interrupted") as caught:
        reader.read(10)
    assert caught.value.retryable
