"""Cold start: a fresh Python process importing a function's handler (Lambda's init phase), against a baseline
process that imports boto3 and builds a DynamoDB client, measured interleaved in one run (DESIGN §9)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
HANDLER = "import sys; sys.path[:0] = [{layer!r}, {fn!r}]; import app; assert callable(app.lambda_handler)"

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "WhatsAppGateway",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "CHANNELS_TABLE": "channels",
    "CONVERSATIONS_TABLE": "conversations",
    "MESSAGES_TABLE": "messages",
    "IDEMPOTENCY_TABLE": "idempotency",
    "MEDIA_BUCKET": "media",
    "CREDENTIALS_KEY_ID": "alias/bench",
    "EVENT_BUS_NAME": "bench",
    "PYTHONDONTWRITEBYTECODE": "0",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml's Globals set it
}


def functions() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def _time(code: str) -> float:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **ENV}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def measure(rounds: int = 15) -> dict[str, list[float]]:
    """Interleave baseline and every function in each round so machine noise hits all of them alike."""
    layer = str(ROOT / "layers" / "common")
    codes = {"baseline (boto3 + DynamoDB client)": BASELINE}
    for name in functions():
        codes[name] = HANDLER.format(layer=layer, fn=str(ROOT / "functions" / name))
    for code in codes.values():  # warm the file cache and write .pyc files once, as a deployed package has
        _time(code)
    samples: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(rounds):
        for name, code in codes.items():
            samples[name].append(_time(code))
    return samples


def report(samples: dict[str, list[float]]) -> list[str]:
    names = list(samples)
    base = statistics.median(samples[names[0]])
    lines = [
        "| process | median ms | p90 ms | ratio to baseline |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        values = sorted(samples[name])
        median = statistics.median(values)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        lines.append(f"| {name} | {median * 1000:.0f} | {p90 * 1000:.0f} | {median / base:.2f}× |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 15))))
