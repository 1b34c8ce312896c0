"""Meta webhook: signature check + normalization, ours against pywa's, on the same payloads in one process.

``python -m bench.parse_speed [ROUNDS]``. The corpus is every example notification of the official spec
(``../shared/specs``, POST /whatsapp/webhooks) plus ``tests/fixtures/meta_webhooks.json`` (usernames and BSUIDs,
edits, deletions, coexistence echoes, groups, WABA-level fields), each serialised as Meta sends it and signed.

- ours: ``X-Hub-Signature-256`` parsed and checked (HMAC-SHA256), the body parsed and its shape checked, and
  EVERY change normalized into the gateway's domain objects (every message, echo, edit, status, error and
  WABA-level notice of every entry);
- pywa 4.5: ``webhook_update_validator`` (the same HMAC) + ``webhook_update_handler`` with a handler registered
  for every update type, so that it builds its typed update (it builds one per payload: the first item of the
  first change) — duplicate skipping off, logging above INFO so neither side pays for log output.

Each payload is timed for both sides in the same round, the order alternating, many calls per sample; the
report gives the median over payloads of (our median / pywa's median) and the corpus totals. pywa is a
bench-only dependency (requirements-dev.txt); it never enters the layer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "specs" / "meta-business-messaging-api_v23.0.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "meta_webhooks.json"
SECRET = "bench-app-secret-0123456789"
CALLS_PER_SAMPLE = 20


def corpus() -> list[tuple[str, bytes, str]]:
    """``(name, body, signature header)`` for every payload, bodies as Meta serialises them (ASCII, escaped)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(SPEC.read_bytes(), Loader=loader)
    examples = spec["paths"]["/whatsapp/webhooks"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    payloads = {f"spec:{name}": example["value"] for name, example in examples.items()}
    payloads |= {f"fixture:{name}": value for name, value in json.loads(FIXTURES.read_text()).items()}
    out = []
    for name, payload in payloads.items():
        body = json.dumps(payload).encode("ascii")
        header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        out.append((name, body, header))
    return out


def ours() -> Callable[[bytes, str], int]:
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    from gateway.providers import meta_webhook as mw

    def run(body: bytes, header: str) -> int:
        if not mw.signature_valid(body, mw.parse_signature(header), SECRET):
            raise AssertionError("signature")
        notification = mw.parse_notification(body)
        return sum(content.items for content in mw.normalize(notification))

    return run


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def pywa() -> tuple[Callable[[bytes, str], int], _Failures]:
    from pywa import WhatsApp, handlers

    logging.getLogger("pywa").setLevel(logging.ERROR)
    failures = _Failures()
    logging.getLogger("pywa").addHandler(failures)
    wa = WhatsApp(
        phone_id="106540352242922",
        token="bench-token",
        server=None,
        verify_token="bench-verify-token",
        app_secret=SECRET,
        filter_updates=False,
        skip_duplicate_updates=False,
        validate_updates=True,
    )
    built = [0]

    def count(_: Any, __: Any) -> None:
        built[0] += 1

    kinds = [
        cls
        for cls in vars(handlers).values()
        if isinstance(cls, type)
        and issubclass(cls, handlers.Handler)
        and cls.__name__.endswith("Handler")
        and not cls.__name__.startswith("_")
        and cls not in {handlers.Handler, handlers.RawUpdateHandler}
        and not getattr(cls, "__abstractmethods__", None)
    ]
    wa.add_handlers(*[cls(count) for cls in kinds])

    def run(body: bytes, header: str) -> int:
        if wa.webhook_update_validator(body, header) is not None:
            raise AssertionError("signature")
        before = built[0]
        wa.webhook_update_handler(body)
        return built[0] - before

    return run, failures


def _sample(fn: Callable[[bytes, str], int], body: bytes, header: str) -> float:
    started = time.perf_counter()
    for _ in range(CALLS_PER_SAMPLE):
        fn(body, header)
    return (time.perf_counter() - started) / CALLS_PER_SAMPLE


def measure(rounds: int = 15) -> dict[str, Any]:
    payloads = corpus()
    mine = ours()
    theirs, failures = pywa()
    ours_items = {name: mine(body, header) for name, body, header in payloads}
    failures.count = 0
    pywa_built = {name: theirs(body, header) for name, body, header in payloads}
    pywa_failed = sum(1 for built in pywa_built.values() if not built)
    times: dict[str, dict[str, list[float]]] = {name: {"ours": [], "pywa": []} for name, _, _ in payloads}
    for round_ in range(rounds):
        for index, (name, body, header) in enumerate(payloads):
            order = [("ours", mine), ("pywa", theirs)]
            if (round_ + index) % 2:
                order.reverse()
            for label, fn in order:
                times[name][label].append(_sample(fn, body, header))
    ratios = [statistics.median(t["ours"]) / statistics.median(t["pywa"]) for t in times.values()]
    # pywa gives up early on payloads it cannot build (cheap for it): the ratio over the ones it did build
    built_ratios = [
        statistics.median(t["ours"]) / statistics.median(t["pywa"]) for name, t in times.items() if pywa_built[name]
    ]
    total_ours = sum(statistics.median(t["ours"]) for t in times.values())
    total_pywa = sum(statistics.median(t["pywa"]) for t in times.values())
    return {
        "payloads": len(payloads),
        "rounds": rounds,
        "calls": CALLS_PER_SAMPLE,
        "ours_items": sum(ours_items.values()),
        "pywa_built": sum(pywa_built.values()),
        "pywa_failed": pywa_failed,
        "median_ratio": statistics.median(ratios),
        "p90_ratio": sorted(ratios)[min(len(ratios) - 1, int(0.9 * len(ratios)))],
        "built_median_ratio": statistics.median(built_ratios),
        "ours_us": total_ours / len(payloads) * 1e6,
        "pywa_us": total_pywa / len(payloads) * 1e6,
        "total_ratio": total_ours / total_pywa,
    }


def report(result: dict[str, Any]) -> list[str]:
    return [
        "| corpus | payloads | items normalized (ours) | updates built (pywa) | payloads pywa built nothing for |",
        "|---|---:|---:|---:|---:|",
        f"| spec examples + tests/fixtures/meta_webhooks.json | {result['payloads']} | {result['ours_items']} |"
        f" {result['pywa_built']} | {result['pywa_failed']} |",
        "",
        "| per payload (signature + normalization) | ours µs | pywa 4.5 µs | ours / pywa |",
        "|---|---:|---:|---:|",
        f"| mean of per-payload medians | {result['ours_us']:.1f} | {result['pywa_us']:.1f} |"
        f" {result['total_ratio']:.2f}× |",
        f"| median over payloads of the ratio | | | **{result['median_ratio']:.2f}×**"
        f" (p90 {result['p90_ratio']:.2f}×) |",
        f"| median over the payloads pywa built an update for | | | {result['built_median_ratio']:.2f}× |",
        "",
        f"Target ≤ 0.8× pywa per payload. {result['rounds']} rounds × {result['calls']} calls per sample, both"
        " sides in the same round, order alternating.",
    ]


if __name__ == "__main__":
    outcome = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
    print("\n".join(report(outcome)))
