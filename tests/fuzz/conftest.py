"""Fuzz fixtures: one moto + sandbox per module (provisioning per hypothesis example would be far too slow),
a fresh per-test tally, and a table of the cases each handler answered at the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz.support import FuzzStack, fuzz_stack, fuzzing


@pytest.fixture(scope="module")
def module_stack() -> Iterator[FuzzStack]:
    with fuzz_stack() as stack:
        yield stack


@pytest.fixture
def stack(module_stack: FuzzStack, request: pytest.FixtureRequest) -> Iterator[FuzzStack]:
    with fuzzing(module_stack, request) as stack:
        yield stack


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Cases per handler over the fuzz tests of this run (shown when the controller collected them, i.e.
    without xdist; under xdist the figures are still in each report's ``user_properties``)."""
    cases: Counter[str] = Counter()
    storage: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {}
    seconds = 0.0
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":  # the figures are added when the test ends
                continue
            for key, figures in getattr(report, "user_properties", []):
                if key != "fuzz":
                    continue
                seconds += figures["seconds"]
                for name, tally in figures["handlers"].items():
                    cases[name] += tally["cases"]
                    storage[name] += tally["storage"]
                    statuses.setdefault(name, Counter()).update(tally["statuses"])
    if not cases:
        return
    terminalreporter.section("fuzz: cases per handler")
    for name in sorted(cases):
        codes = " ".join(f"{code}×{n}" for code, n in sorted(statuses[name].items()))
        terminalreporter.write_line(f"{name:16} {cases[name]:6d} cases  {storage[name]:5d} reached storage  {codes}")
    terminalreporter.write_line(f"{'total':16} {sum(cases.values()):6d} cases in {seconds:.0f} s of fuzz tests")
