"""Media streams in constant memory: a 100 MB document from an HTTP source to S3 (moto's server, another
process) holds about three 5 MB parts at a time, not the file (bench/media.py; `make bench` also compares the
throughput with plain boto3 and reports RSS).

Both the streaming process's RSS high-water mark (VmHWM, reset when the transfer starts) and Python's own peak
allocation (tracemalloc) are bounded. Not ru_maxrss: Linux carries it across exec from the forked copy of the
parent, so under a pytest worker it reported the worker's size (1.9 GB) instead of the child's."""

from __future__ import annotations

from bench.media import SIZE, measure

PYTHON_PEAK_MB = 24  # 3 parts of 5 MB in flight + the reads' buffers (19.3 MB measured)
RSS_GROWTH_MB = 32  # DESIGN §9 (25.6 MB measured)


def test_a_100_mb_document_streams_in_constant_memory() -> None:
    (result,) = measure(rounds=1, modes=("ours-traced",))["ours-traced"]

    assert result["size"] == SIZE
    assert result["python_peak_mb"] <= PYTHON_PEAK_MB, result
    assert result["growth_mb"] <= RSS_GROWTH_MB, result
