"""Load through the running local stack (docs/RELIABILITY.md "Load"): 2,000 signed inbound webhooks, about half
Twilio and half Meta, 20 % of them redeliveries (half racing their original on another worker), from 8 threads
over keep-alive connections. Every webhook is sent and must be answered 200 (none a 5xx), and the inbox API must
list exactly the unique messages, each once, with every conversation's unread count equal to its messages. The
plan, the run and the count are ``bench.load``'s.

Bounded by count, not by time: every request is sent however long the run takes (only a request that hangs is
given up, after ``bench.load.fire``'s per-request hang guard). Throughput and latency are figures, not
assertions: printed here, measured by ``make bench`` (docs/BENCHMARKS.md "Load").
"""

from __future__ import annotations

import time

import pytest

from bench.load import problems, report, run_load
from local.testing import LocalStackClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TOTAL = 2000
CONCURRENCY = 8
DUPLICATES = 0.2


def test_2000_webhooks_store_exactly_the_unique_messages(local_stack: LocalStackClient,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    plan, result = run_load(local_stack.base_url, local_stack.token, total=TOTAL, concurrency=CONCURRENCY,
                            duplicate_ratio=DUPLICATES)

    with capsys.disabled():  # the figures, in the test log (docs/RELIABILITY.md has a reference run)
        print("\n" + "\n".join(report(plan, result)) + f"\nwhole test {time.monotonic() - started:.1f} s")
    assert len(plan.requests) == TOTAL and plan.duplicates == TOTAL * DUPLICATES
    assert {w.provider for w in plan.requests} == {"twilio", "meta"}
    assert abs(sum(w.provider == "twilio" for w in plan.requests) - TOTAL / 2) < TOTAL * 0.1
    assert problems(plan, result) == []
    assert result.statuses == {200: TOTAL}
    assert sorted(result.stored) == sorted(plan.unique) and set(result.stored.values()) == {1}
