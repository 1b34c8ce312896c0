"""Media streams in constant memory: a 100 MB document from an HTTP source to S3 (moto's server, another
process) holds about three 5 MB parts at a time, not the file (bench/media.py; `make bench` also compares the
throughput with plain boto3 and reports RSS).

Python's own peak allocation (tracemalloc) is the exact bound: it does not depend on thread timing. RSS adds
what glibc keeps, which does (25-39 MB for the same transfer under different parent processes), so its bound
here is the loose one that still fails for any whole-file buffering (≥ 100 MB)."""

from __future__ import annotations

from bench.media import SIZE, measure

PYTHON_PEAK_MB = 24  # 3 parts of 5 MB in flight + the reads' buffers (19.3 MB measured)
RSS_GROWTH_MB = 48


def test_a_100_mb_document_streams_in_constant_memory() -> None:
    (result,) = measure(rounds=1, modes=("ours-traced",))["ours-traced"]

    assert result["size"] == SIZE
    assert result["python_peak_mb"] <= PYTHON_PEAK_MB, result
    assert result["growth_mb"] <= RSS_GROWTH_MB, result
