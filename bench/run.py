"""`make bench`: run every benchmark in one go and write docs/BENCHMARKS.md with the command and machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import cold_start, console, layer_size, media, requests, twilio_webhook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "BENCHMARKS.md"


CONSOLE_HEADING = "## Web console (bundle, first render, live updates)"
CONSOLE_INTRO = [
    "`python -m bench.console`: the built `web/dist` gzip-compressed at level 9; then Debian's Chromium (Playwright)"
    " against a fresh local stack, each round in a new browser profile (cold) and once more after a reload (warm):"
    " first contentful paint and the moment the sign-in form exists (an observer installed before the page's"
    " scripts). Live: a signed Twilio webhook posted while the inbox is open, until its text is on screen; a reply"
    " sent until it shows \"read\" (the sandbox posts the callbacks at once). The console polls every 3 s.",
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, {system}, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    load_at_start = os.getloadavg()[0]
    sections: list[str] = []

    samples = cold_start.measure(rounds)
    sections += [
        "## Cold start (init of a fresh process)",
        "",
        f"Each function's `app.py` imported in a fresh `python3.13` process, against a baseline process that imports"
        f" boto3 and builds a DynamoDB client; {rounds} rounds, interleaved so noise hits all alike; medians."
        " Target ≤ 1.3× the baseline (DESIGN §9). No Powertools Tracer (docs/decisions.md D4).",
        "",
        *cold_start.report(samples),
        "",
    ]

    sizes = layer_size.measure()
    sections += [
        "## Layer size",
        "",
        "Unzipped, installed for arm64 / Python 3.13 exactly as `sam build` does, with and without the packages"
        " the Lambda runtime already provides (boto3, botocore, s3transfer, jmespath, dateutil, urllib3, six).",
        "",
        "| what | MB |",
        "|---|---:|",
        f"| whole layer | {sizes['total'] / 1e6:.1f} |",
        f"| without runtime-provided packages | {sizes['without_runtime_provided'] / 1e6:.1f} |",
        *[f"| largest: `{k[4:]}` | {v / 1e6:.1f} |" for k, v in sizes.items() if k.startswith("pkg:")],
        "",
    ]

    transfers = {**media.measure(int(os.environ.get("BENCH_MEDIA_ROUNDS", "4"))), **media.measure(1, ("ours-traced",))}
    sections += [
        "## Media streaming (100 MB document, local HTTP source → S3 on moto server)",
        "",
        "Each transfer in a fresh child process that reports its own peak RSS growth; rounds alternate between"
        " ours and the baseline. S3 is moto's server in another process, so its memory is not counted.",
        "",
        *media.report(transfers),
        "",
    ]

    warm = twilio_webhook.measure(int(os.environ.get("BENCH_WARM_CALLS", "200")))
    sections += [
        "## Warm webhook, in-process (Twilio inbound text)",
        "",
        "`python -m bench.twilio_webhook`: the real handler loaded like Lambda loads it, against moto; after a"
        " warm-up, each call timed with `time.perf_counter`. The first row answers the one AWS call with a canned"
        " 200 at botocore's transport (our code + Powertools + botocore); moto's own DynamoDB (as the local stack"
        " runs it, local.moto_transactions) is far slower than DynamoDB, so the last row says more about moto than us.",
        "",
        *twilio_webhook.report(warm),
        "",
    ]

    counted = requests.measure()
    sections += [
        "## AWS requests per operation (warm), counted at botocore",
        "",
        "`python -m bench.requests`: every call through `BaseClient._make_api_call` recorded, averaged over warm"
        " calls; the inbound processor fed by the local stream poller (auto-reply off, no media).",
        "",
        *requests.report(counted),
        "",
        "## Cost model",
        "",
        *requests.cost_model(counted),
        "",
    ]

    web = console.measure(int(os.environ.get("BENCH_CONSOLE_ROUNDS", "5")))
    sections += [
        CONSOLE_HEADING,
        "",
        *CONSOLE_INTRO,
        "",
        *console.report(web),
        "",
    ]

    extra = ROOT / "bench" / "results"
    for part in sorted(extra.glob("*.md")) if extra.exists() else []:
        sections += [part.read_text().rstrip(), ""]

    header = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`{Path(sys.executable).name} -m bench.run`, BENCH_ROUNDS={rounds})"
        f" on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {commit()}.",
        "",
        f"Machine: {machine()}. Load average when the run started: {load_at_start:.1f} (above ~1 on 2 cores, other"
        " work was competing and absolute figures and ratios involving moto or disk are pessimistic).",
        "",
        "Compare the ratios, measured side by side in one run: absolute numbers on a shared 2-core machine are noisy.",
        "",
    ]
    OUT.write_text("\n".join(header + sections))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
