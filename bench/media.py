"""Media streaming: a 100 MB document from a local HTTP source to S3 (moto server, another process).

Ours (gateway.media.MediaStreamer) against a plain boto3 ``upload_fileobj`` of the same HTTP response, each in a
fresh child process that reports its own peak RSS growth (VmHWM after minus RSS before the transfer) and
throughput; rounds alternate so both meet the same noise (DESIGN §9: growth ≤ 32 MB, throughput ≥ 0.8×).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 100 * 1024 * 1024
BLOCK = os.urandom(1024 * 1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Source(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        for _ in range(SIZE // len(BLOCK)):
            self.wfile.write(BLOCK)

    def log_message(self, *args: object) -> None:
        pass


CHILD = r"""
import json, os, sys, time, tracemalloc
sys.path[:0] = [{layer!r}]
import boto3, requests
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench"); os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
s3 = boto3.client("s3", region_name="us-east-1", endpoint_url={moto!r})
from gateway.media import MediaRequest, MediaStreamer
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
# The peak is VmHWM (this process image's high-water RSS), reset here to the current RSS. Not ru_maxrss: Linux
# carries it across exec from the forked copy of the parent, so it reports the parent's size when that is larger.
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
except OSError:  # kernels before 4.0: the mark then includes the imports' transient peak (pessimistic)
    pass
mode, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "ours-traced":  # Python's own allocations (slower: not for throughput)
    tracemalloc.start()
before = status_kb("VmRSS"); start = time.perf_counter()
if mode.startswith("ours"):
    streamer = MediaStreamer(("127.0.0.1",), "bench", allow_loopback=True, s3=s3)
    streamer.stream_to_s3(MediaRequest(url=url), key, kind="document")
else:
    with requests.get(url, stream=True, timeout=30) as response:
        s3.upload_fileobj(response.raw, "bench", key)
elapsed = time.perf_counter() - start
peak = status_kb("VmHWM")
size = s3.head_object(Bucket="bench", Key=key)["ContentLength"]
traced = tracemalloc.get_traced_memory()[1] / 1024 / 1024 if tracemalloc.is_tracing() else None
print(json.dumps({{"seconds": elapsed, "growth_mb": (peak - before) / 1024, "python_peak_mb": traced, "size": size}}))
"""


def measure(rounds: int = 3, modes: tuple[str, ...] = ("ours", "baseline")) -> dict[str, list[dict[str, float]]]:
    import threading

    import boto3
    from moto.server import ThreadedMotoServer

    source = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    moto_port = _free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    del ThreadedMotoServer
    endpoint = f"http://127.0.0.1:{moto_port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client(
            "s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="b", aws_secret_access_key="b"
        )
        s3.create_bucket(Bucket="bench")
        url = f"http://127.0.0.1:{source.server_address[1]}/file.pdf"
        code = CHILD.format(layer=str(ROOT / "layers" / "common"), moto=endpoint)
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
        for i in range(rounds):
            for mode in modes[::-1] if i % 2 else modes:
                out = subprocess.run(
                    [sys.executable, "-c", code, mode, url, f"{mode}-{i}"],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b"},
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                assert result["size"] == SIZE, result
                results[mode].append(result)
                s3.delete_object(Bucket="bench", Key=f"{mode}-{i}")
        return results
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        source.shutdown()


def report(results: dict[str, list[dict[str, float]]]) -> list[str]:
    def mbps(r: dict[str, float]) -> float:
        return SIZE / 1024 / 1024 / r["seconds"]

    ours = statistics.median(mbps(r) for r in results["ours"])
    base = statistics.median(mbps(r) for r in results["baseline"])
    growth = max(r["growth_mb"] for r in results["ours"])
    base_growth = max(r["growth_mb"] for r in results["baseline"])
    traced = [r["python_peak_mb"] for r in results.get("ours-traced", [])]
    python_peak = (
        [f"Python's own peak allocation while streaming (tracemalloc, one more round): **{max(traced):.1f} MB**:"
         " about three 5 MB parts (one being read, two uploading) and the reads' buffers. RSS growth is the"
         " child's VmHWM (reset when the transfer starts) minus its RSS then; not ru_maxrss, which Linux carries"
         " across exec from the forked copy of the parent."] if traced else []
    )
    return [
        "| transfer of 100 MB | median MB/s | peak RSS growth (max of rounds) |",
        "|---|---:|---:|",
        f"| plain boto3 `upload_fileobj(response.raw)` (baseline) | {base:.1f} | {base_growth:.1f} MB |",
        f"| `MediaStreamer.stream_to_s3` (hash, size limit, allow-list) | {ours:.1f} | {growth:.1f} MB |",
        "",
        f"Throughput ratio ours/baseline: **{ours / base:.2f}×** (target ≥ 0.8×); peak RSS growth **{growth:.1f} MB**"
        " (target ≤ 32 MB).",
        "",
        *python_peak,
    ]


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print("\n".join(report({**measure(rounds), **measure(1, ("ours-traced",))})))
