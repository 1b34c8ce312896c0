"""Prism serving the official provider specs (../shared/specs) as strict stand-ins: any request that does not
match the spec is answered 422 (or 401 for missing auth), which the provider adapters turn into errors."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT.parent / "shared" / "specs"
PRISM = ROOT / "node_modules" / ".bin" / "prism"
TWILIO_SPEC = SPECS / "twilio_api_v2010.yaml"
META_SPEC = SPECS / "meta-business-messaging-api_v23.0.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_prism(spec: Path, *, dynamic: bool) -> Iterator[str]:
    if not PRISM.exists():
        pytest.fail(f"Prism is not installed at {PRISM}: run `make deps` (npm ci)")
    if not spec.exists():
        pytest.fail(f"spec not found: {spec} (../shared must sit beside the checkout)")
    port = _free_port()
    args = [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "--errors"]
    if dynamic:
        args.append("-d")
    log = open(ROOT / ".local" / f"prism-{spec.stem}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*args, str(spec)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Prism exited early for {spec.name}; see {log.name}")
        try:
            requests.get(base + "/__prism_ready", timeout=5)
            break
        except requests.RequestException:  # refused while binding, or a read timeout while it loads the spec
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"Prism did not start for {spec.name} within 60 s")
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def prism_twilio() -> Iterator[str]:
    (ROOT / ".local").mkdir(exist_ok=True)
    # Dynamic mode: the spec's static examples violate the spec's own response schemas on some endpoints.
    yield from _start_prism(TWILIO_SPEC, dynamic=True)


@pytest.fixture(scope="session")
def prism_meta() -> Iterator[str]:
    (ROOT / ".local").mkdir(exist_ok=True)
    yield from _start_prism(META_SPEC, dynamic=False)
