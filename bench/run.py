"""`make bench`: run every benchmark in one go and write docs/BENCHMARKS.md with the command and machine.

``python -m bench.run --only load`` measures only the sections named (``cold_start``, ``layer``, ``media``, ``warm``,
``parse_speed``, ``requests``, ``load``, ``console``) and puts them in place of the same sections of the existing
docs/BENCHMARKS.md, each re-measured section saying when, at which commit and under which load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import cold_start, console, layer_size, load, media, parse_speed, requests, twilio_webhook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "BENCHMARKS.md"


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


def cold_start_section(rounds: int) -> list[str]:
    samples = cold_start.measure(rounds)
    return [
        "## Cold start (init of a fresh process)",
        "",
        f"Each function's `app.py` imported in a fresh `python3.13` process, against a baseline process that imports"
        f" boto3 and builds a DynamoDB client; {rounds} rounds, interleaved so noise hits all alike; medians."
        " Target ≤ 1.3× the baseline. No Powertools Tracer (docs/decisions.md D4).",
        "",
        *cold_start.report(samples),
        "",
    ]


def layer_section(rounds: int) -> list[str]:
    sizes = layer_size.measure()
    return [
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


def media_section(rounds: int) -> list[str]:
    transfers = {**media.measure(int(os.environ.get("BENCH_MEDIA_ROUNDS", "4"))), **media.measure(1, ("ours-traced",))}
    return [
        "## Media streaming (100 MB document, local HTTP source → S3 on moto server)",
        "",
        "Each transfer in a fresh child process that reports its own peak RSS growth; rounds alternate between"
        " ours and the baseline. S3 is moto's server in another process, so its memory is not counted.",
        "",
        *media.report(transfers),
        "",
    ]


def warm_section(rounds: int) -> list[str]:
    warm = twilio_webhook.measure(int(os.environ.get("BENCH_WARM_CALLS", "200")))
    return [
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


def parse_speed_section(rounds: int) -> list[str]:
    parsed = parse_speed.measure(int(os.environ.get("BENCH_PARSE_ROUNDS", "25")))
    return [
        "## Meta webhook: signature check + normalization, ours vs pywa 4.5",
        "",
        "`python -m bench.parse_speed`: every example of the official spec and every payload of"
        " `tests/fixtures/meta_webhooks.json`, signed as Meta signs them, handled in one process by ours (signature,"
        " parse, every item of every change normalized) and by pywa 4.5 (its validator and update handler, a handler"
        " registered for every update type; it builds the first item of a payload only). Each payload timed for both"
        " sides in the same round, order alternating; medians.",
        "",
        *parse_speed.report(parsed),
        "",
    ]


def requests_section(rounds: int) -> list[str]:
    counted = requests.measure()
    return [
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


def load_section(rounds: int) -> list[str]:
    plan, result, profile, _ = load.measure(total=int(os.environ.get("BENCH_LOAD_TOTAL", "2000")), profile=True)
    found = load.problems(plan, result)
    return [
        "## Load (signed webhooks of both providers through the local stack)",
        "",
        "`python -m bench.load --profile`: a fresh local stack (`python -m local.dev`), one Twilio and one Meta"
        " number, 20 % redeliveries (half racing their original), 8 threads over keep-alive connections; then every"
        " stored message counted through the inbox API (docs/RELIABILITY.md \"Load\"). The stack is moto, the"
        " gateway and the stream poller in one process on this machine: the figures measure the local stack, not"
        " AWS. tests/e2e/test_load.py asserts the counts of the same run, never its speed.",
        "",
        *load.report(plan, result, profile),
        "",
        *([f"PROBLEMS: {'; '.join(found)}", ""] if found else []),
    ]


def console_section(rounds: int) -> list[str]:
    web = console.measure(int(os.environ.get("BENCH_CONSOLE_ROUNDS", "5")))
    return [
        "## Web console (bundle, first render, live updates)",
        "",
        "`python -m bench.console`: the built `web/dist` gzip-compressed at level 9; then Debian's Chromium"
        " (Playwright) against a fresh local stack, each round in a new browser profile (cold) and once more after a"
        " reload (warm): first contentful paint and the moment the sign-in form exists (an observer installed before"
        " the page's scripts). Live: a signed Twilio webhook posted while the inbox is open, until its text is on"
        " screen; a reply sent until it shows \"read\" (the sandbox posts the callbacks at once). The console polls"
        " every 3 s.",
        "",
        *console.report(web),
        "",
    ]


SECTIONS = {
    "cold_start": cold_start_section,
    "layer": layer_section,
    "media": media_section,
    "warm": warm_section,
    "parse_speed": parse_speed_section,
    "requests": requests_section,
    "load": load_section,
    "console": console_section,
}


def header(rounds: int, load_at_start: float) -> list[str]:
    return [
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


def _by_heading(lines: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("## "):
            parts.append([])
        parts[-1].append(line)
    return parts


def splice(document: str, sections: list[list[str]]) -> str:
    """``document`` with each ``## `` section of ``sections`` in place of its namesake, else appended."""
    parts = _by_heading(document.rstrip("\n").split("\n"))
    for new in (part for section in sections for part in _by_heading(section)[1:]):
        index = next((i for i, part in enumerate(parts) if part and part[0] == new[0]), None)
        if index is None:
            if parts[-1] and parts[-1][-1] != "":
                parts[-1].append("")
            parts.append(new)
        else:
            parts[index] = new
    return "\n".join(line for part in parts for line in part).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="measure these sections only")
    args = parser.parse_args(argv)
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    load_at_start = os.getloadavg()[0]
    if args.only:
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        stamp = (f"Re-measured by `python -m bench.run --only {' '.join(args.only)}` on {when} UTC at commit"
                 f" {commit()}, load average {load_at_start:.1f}.")
        sections = []
        for name in args.only:
            section = SECTIONS[name](rounds)
            sections.append([section[0], "", stamp, *section[1:]])
        OUT.write_text(splice(OUT.read_text(), sections))
    else:
        lines: list[str] = []
        for measure in SECTIONS.values():
            lines += measure(rounds)
        extra = ROOT / "bench" / "results"
        for part in sorted(extra.glob("*.md")) if extra.exists() else []:
            lines += [part.read_text().rstrip(), ""]
        OUT.write_text("\n".join(header(rounds, load_at_start) + lines))
    print(OUT.read_text())

if __name__ == "__main__":
    main()
