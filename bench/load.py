"""Load: signed inbound webhooks of both providers through the running local stack (docs/RELIABILITY.md "Load").

``python -m bench.load [--total 2000] [--concurrency 8] [--duplicates 0.2]`` starts a fresh local stack
(``python -m local.dev`` in a subprocess, as the e2e tests do), connects one Twilio number and one Meta number for
a new tenant through the admin API, then posts ``total`` webhooks, about half Twilio and half Meta, of which
``duplicates`` are redeliveries of a message already in the plan (half of them right next to the original, so
they race with it on another worker; half anywhere), from a pool of ``concurrency`` threads, each with its own
keep-alive connection. Every request is timed at the client. Then the stored messages are counted through the
inbox API (``GET /v1/conversations`` and ``…/messages``, cursor pagination): every unique provider message id
must be there exactly once and every conversation's ``unread_count`` must equal its stored inbound messages.

``--profile`` runs the stack with timers around moto's DynamoDB backend (``python -m bench.load --serve``, see
``serve``) and reports where the server's time went: moto's ``TransactWriteItems`` and, inside it, the
``copy.deepcopy`` of every table the transaction touches (moto's rollback snapshot), the other DynamoDB calls, and
the rest (gateway, handlers, signatures, botocore, the stream poller).

``tests/e2e/test_load.py`` runs the same plan against the e2e session's stack (``run_load``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parents[1]
CONTACTS_PER_PROVIDER = 40


# ---------------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Webhook:
    provider: str  # twilio | meta
    provider_message_id: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Plan:
    tenant: str
    admin_token: str
    channels: dict[str, dict[str, Any]]  # provider → channel view
    requests: list[Webhook]
    unique: dict[str, str]  # provider message id → provider

    @property
    def duplicates(self) -> int:
        return len(self.requests) - len(self.unique)


def _post_json(base_url: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def _twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature (its documented algorithm; tests check it against twilio-python's)."""
    import base64

    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def make_plan(base_url: str, token: Callable[..., str], *, total: int = 2000, duplicate_ratio: float = 0.2,
              seed: int = 7) -> Plan:
    """Connect one Twilio and one Meta number for a new tenant and build ``total`` signed webhooks."""
    rng = random.Random(seed)
    suffix = f"{os.getpid()}{rng.randrange(10**6)}{int(time.time() * 1000) % 10**6}"
    tenant = f"load-{suffix}"
    admin = token(tenant_id=tenant, admin=True)
    twilio_number = "+1415" + str(rng.randrange(10**7)).rjust(7, "0")
    twilio_token = hashlib.sha256(f"twilio-{suffix}".encode()).hexdigest()[:32]
    account = "AC" + hashlib.md5(suffix.encode(), usedforsecurity=False).hexdigest()
    app_secret = hashlib.sha256(f"meta-{suffix}".encode()).hexdigest()[:32]
    phone_number_id = str(10**14 + rng.randrange(10**14))
    channels = {
        "twilio": _post_json(base_url, "/v1/channels", admin, {
            "provider": "twilio", "name": "Load", "phone_number": twilio_number, "account_sid": account,
            "auth_token": twilio_token, "messaging_service_sid": None, "location_id": None}),
        "meta": _post_json(base_url, "/v1/channels", admin, {
            "provider": "meta", "name": "Load", "phone_number_id": phone_number_id, "business_account_id": "1",
            "display_phone_number": "+15550783881", "access_token": f"EAAG-load-{suffix}", "app_secret": app_secret,
            "verify_token": None, "location_id": None}),
    }
    contacts = ["+1646" + str(5550000 + n) for n in range(CONTACTS_PER_PROVIDER)]
    n_unique = round(total * (1 - duplicate_ratio))
    unique: list[Webhook] = []
    for n in range(n_unique):
        contact = contacts[rng.randrange(len(contacts))]
        if n % 2 == 0:
            sid = "SM" + hashlib.md5(f"{suffix}-{n}".encode(), usedforsecurity=False).hexdigest()
            params = {
                "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": f"Load {contact[-4:]}", "MessageType": "text",
                "SmsSid": sid, "WaId": contact[1:], "SmsStatus": "received", "Body": f"load message {n}",
                "To": f"whatsapp:{twilio_number}", "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid,
                "AccountSid": account, "From": f"whatsapp:{contact}", "ApiVersion": "2010-04-01",
            }
            signature = _twilio_signature(twilio_token, channels["twilio"]["webhook_url"], params)
            unique.append(Webhook("twilio", sid, "/webhooks/twilio", urlencode(params).encode(), {
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1"}))
        else:
            wamid = f"wamid.load-{suffix}-{n}"
            payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                       "value": {"messaging_product": "whatsapp",
                                 "metadata": {"display_phone_number": "15550783881",
                                              "phone_number_id": phone_number_id},
                                 "contacts": [{"profile": {"name": f"Load {contact[-4:]}"}, "wa_id": contact[1:]}],
                                 "messages": [{"from": contact[1:], "id": wamid, "timestamp": str(int(time.time())),
                                               "type": "text", "text": {"body": f"load message {n}"}}]}}]}]}
            body = json.dumps(payload).encode()
            signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
            unique.append(Webhook("meta", wamid, "/webhooks/meta", body, {
                "Content-Type": "application/json", "X-Hub-Signature-256": signature,
                "User-Agent": "facebookexternalua"}))
    # Order: the unique messages shuffled; each duplicate either right next to its original (it races with it
    # on another worker) or anywhere later or earlier (a late redelivery).
    rng.shuffle(unique)
    keyed: list[tuple[float, Webhook]] = [(float(i), w) for i, w in enumerate(unique)]
    for d in range(total - n_unique):
        i = rng.randrange(n_unique)
        position = i + rng.uniform(-2, 4) if d % 2 == 0 else rng.uniform(0, n_unique)
        keyed.append((position, unique[i]))
    keyed.sort(key=lambda pair: pair[0])
    return Plan(tenant, admin, channels, [w for _, w in keyed], {w.provider_message_id: w.provider for w in unique})


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class Result:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"twilio": [], "meta": []})
    errors: list[str] = field(default_factory=list)
    transport_errors: int = 0
    wall_s: float = 0.0
    verify_s: float = 0.0
    stored: Counter[str] = field(default_factory=Counter)  # provider message id → times listed
    unread_mismatches: list[str] = field(default_factory=list)
    conversations: int = 0

    @property
    def all_latencies(self) -> list[float]:
        return sorted(self.latencies_ms["twilio"] + self.latencies_ms["meta"])

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def throughput(self) -> float:
        return self.total / self.wall_s if self.wall_s else 0.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def fire(base_url: str, plan: Plan, *, concurrency: int = 8, request_timeout_s: float = 300.0) -> Result:
    """Post every webhook of the plan from ``concurrency`` threads, however long that takes: a request gets no answer
    only when it hangs (``request_timeout_s``, a hang guard on each request, then a transport error)."""
    result = Result()
    lock = threading.Lock()
    local = threading.local()

    def post(webhook: Webhook) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        try:
            answer = session.post(base_url + webhook.path, data=webhook.body, headers=webhook.headers,
                                  timeout=request_timeout_s)
        except requests.RequestException as error:
            with lock:
                result.transport_errors += 1
                result.errors.append(f"{webhook.provider}: {type(error).__name__}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            result.statuses[answer.status_code] += 1
            result.latencies_ms[webhook.provider].append(elapsed)
            if answer.status_code != 200:
                result.errors.append(f"{webhook.provider} {answer.status_code}: {answer.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        futures = [pool.submit(post, webhook) for webhook in plan.requests]
        wait(futures)
    result.wall_s = time.perf_counter() - started
    for future in futures:
        if future.exception() is not None:
            result.errors.append(repr(future.exception()))
    return result


def verify(base_url: str, plan: Plan, result: Result) -> None:
    """Count what the inbox API lists for the plan's tenant: each provider message id, each unread count."""
    started = time.perf_counter()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {plan.admin_token}"}

    def pages(path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            answer = session.get(base_url + path, params=params, headers=headers, timeout=60)
            answer.raise_for_status()
            data = answer.json()
            items += data["items"]
            cursor = data.get("next_cursor")
            if not cursor:
                return items

    conversations = pages("/v1/conversations")
    result.conversations = len(conversations)
    for conversation in conversations:
        messages = pages(f"/v1/conversations/{conversation['id']}/messages")
        inbound = [m for m in messages if m["direction"] == "inbound"]
        result.stored.update(m["provider_message_id"] for m in inbound)
        if conversation["unread_count"] != len(inbound):
            result.unread_mismatches.append(f"{conversation['id']}: {conversation['unread_count']} != {len(inbound)}")
    result.verify_s = time.perf_counter() - started


def run_load(base_url: str, token: Callable[..., str], *, total: int = 2000, concurrency: int = 8,
             duplicate_ratio: float = 0.2, seed: int = 7) -> tuple[Plan, Result]:
    plan = make_plan(base_url, token, total=total, duplicate_ratio=duplicate_ratio, seed=seed)
    result = fire(base_url, plan, concurrency=concurrency)
    verify(base_url, plan, result)
    return plan, result


def problems(plan: Plan, result: Result) -> list[str]:
    """Everything that is not "every webhook answered 200 and every unique message stored exactly once"."""
    found = list(result.errors[:20])
    if result.total != len(plan.requests):
        found.append(f"{result.total} of {len(plan.requests)} requests answered")
    fivexx = sum(n for status, n in result.statuses.items() if status >= 500)
    if fivexx:
        found.append(f"{fivexx} answers were 5xx")
    missing = set(plan.unique) - set(result.stored)
    extra = set(result.stored) - set(plan.unique)
    doubled = [pmid for pmid, n in result.stored.items() if n > 1]
    if missing:
        found.append(f"{len(missing)} unique messages not stored, e.g. {sorted(missing)[:3]}")
    if extra:
        found.append(f"{len(extra)} stored messages not in the plan")
    if doubled:
        found.append(f"{len(doubled)} messages stored more than once, e.g. {doubled[:3]}")
    found += result.unread_mismatches[:10]
    return found


def report(plan: Plan, result: Result, profile: dict[str, Any] | None = None) -> list[str]:
    lat = result.all_latencies
    by = result.latencies_ms
    lines = [
        f"- {len(plan.requests)} webhooks ({sum(1 for w in plan.requests if w.provider == 'twilio')} Twilio, "
        f"{sum(1 for w in plan.requests if w.provider == 'meta')} Meta), {plan.duplicates} of them redeliveries "
        f"({plan.duplicates / len(plan.requests):.0%}); {len(plan.unique)} unique messages over "
        f"{result.conversations} conversations",
        f"- answers: {dict(sorted(result.statuses.items()))}, transport errors: {result.transport_errors}",
        f"- stored (counted through the inbox API): {len(result.stored)} distinct, "
        f"{sum(result.stored.values())} listed, {sum(1 for n in result.stored.values() if n > 1)} doubled, "
        f"{len(set(plan.unique) - set(result.stored))} missing; unread counts consistent: "
        f"{'yes' if not result.unread_mismatches else 'NO'}",
        "",
        "| | requests | throughput (req/s) | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| all | {len(lat)} | {result.throughput:.1f} | {percentile(lat, 0.5):.0f} | {percentile(lat, 0.99):.0f} | "
        f"{max(lat) if lat else float('nan'):.0f} |",
    ]
    for provider in ("twilio", "meta"):
        samples = by[provider]
        lines.append(f"| {provider} | {len(samples)} | | {percentile(samples, 0.5):.0f} | "
                     f"{percentile(samples, 0.99):.0f} | {max(samples) if samples else float('nan'):.0f} |")
    lines += ["", f"Send phase {result.wall_s:.1f} s; counting through the API {result.verify_s:.1f} s."]
    if profile:
        lines += ["", *profile_report(profile, result.wall_s)]
    return lines


# ---------------------------------------------------------------------------------------------- profiling
PROFILED_OPERATIONS = ("transact_write_items", "put_item", "update_item", "get_item", "delete_item", "query",
                       "scan")


def serve(profile_path: str) -> int:
    """``python -m bench.load --serve``: ``local.dev`` with timers around moto's DynamoDB backend; the totals are
    written to ``profile_path`` when the stack stops. ``BENCH_LOAD_TABLE_COPIES=1`` keeps moto's own whole-table
    snapshot per transaction (``local.moto_transactions`` not applied), to compare."""
    import copy
    import types

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    import local.moto_transactions
    from local import dev

    totals: dict[str, Any] = {name: {"calls": 0, "seconds": 0.0} for name in (*PROFILED_OPERATIONS, "deepcopy")}
    lock = threading.Lock()
    state = threading.local()
    real_deepcopy = copy.deepcopy

    def add(name: str, seconds: float) -> None:
        with lock:
            totals[name]["calls"] += 1
            totals[name]["seconds"] += seconds

    def timed_deepcopy(value: Any, memo: Any = None) -> Any:
        if not getattr(state, "in_transaction", False) or getattr(state, "copying", False):
            return real_deepcopy(value, memo)
        state.copying = True  # count the outermost copies only
        started = time.perf_counter()
        try:
            return real_deepcopy(value, memo)
        finally:
            state.copying = False
            add("deepcopy", time.perf_counter() - started)

    # moto's module did `import copy`: hand it a copy module whose deepcopy is timed (only moto's dynamodb uses it)
    shim = types.ModuleType("copy")
    shim.__dict__.update(copy.__dict__)
    shim.deepcopy = timed_deepcopy  # type: ignore[attr-defined]
    dynamodb_models.copy = shim  # type: ignore[attr-defined]

    for name in PROFILED_OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        def timed(*args: Any, __name: str = name, __original: Any = original, **kwargs: Any) -> Any:
            outer = not getattr(state, "in_transaction", False)
            if __name == "transact_write_items":
                state.in_transaction = True
            started = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                if __name == "transact_write_items":
                    state.in_transaction = False
                if outer or __name == "transact_write_items":  # writes inside a transaction count as its time
                    add(__name, time.perf_counter() - started)

        setattr(DynamoDBBackend, name, timed)

    if os.environ.get("BENCH_LOAD_TABLE_COPIES") == "1":
        local.moto_transactions.make_transactions_cheap = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        return dev.main()
    finally:
        Path(profile_path).write_text(json.dumps(totals))


def profile_report(profile: dict[str, Any], wall_s: float) -> list[str]:
    lines = ["| where moto's DynamoDB time went (all threads) | calls | seconds | per call (ms) |",
             "|---|---:|---:|---:|"]
    for name in (*PROFILED_OPERATIONS, "deepcopy"):
        entry = profile.get(name) or {}
        calls, seconds = int(entry.get("calls", 0)), float(entry.get("seconds", 0.0))
        if not calls:
            continue
        label = ("  ↳ `copy.deepcopy` inside TransactWriteItems (table snapshots, item copies)" if name == "deepcopy"
                 else f"`{name}`" + (" (whole transaction)" if name == "transact_write_items" else ""))
        lines.append(f"| {label} | {calls} | {seconds:.1f} | {seconds / calls * 1000:.1f} |")
    lines.append(f"| send phase, wall clock | | {wall_s:.1f} | |")
    return lines


# ---------------------------------------------------------------------------------------------- command line
def _start(tmp: Path, profile_path: str | None) -> tuple[subprocess.Popen[bytes], str, Path]:
    from local.testing import free_port

    port = free_port()
    state = tmp / "state.json"
    log = tmp / "stack.log"
    env = {**os.environ, "PORT": str(port), "LOCAL_STATE_FILE": str(state), "PYTHONUNBUFFERED": "1",
           "LOCAL_LOG_LEVEL": "WARNING"}
    for name in ("TWILIO_API_BASE_URL", "META_GRAPH_BASE_URL", "MEDIA_ALLOWED_HOSTS", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "bench.load", "--serve", profile_path] if profile_path else [
        sys.executable, "-m", "local.dev"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the stack exited:\n{log.read_text(errors='replace')}")
        try:
            if requests.get(f"{base_url}/_local/health", timeout=2).status_code == 200:
                return process, base_url, log
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the stack did not start:\n{log.read_text(errors='replace')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="time moto's DynamoDB inside the stack")
    parser.add_argument("--table-copies", action="store_true",
                        help="with --profile: keep moto's whole-table snapshot per transaction, to compare")
    parser.add_argument("--serve", metavar="PROFILE_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)

    if args.table_copies:
        os.environ["BENCH_LOAD_TABLE_COPIES"] = "1"
    plan, result, profile, log_tail = measure(total=args.total, concurrency=args.concurrency,
                                              duplicate_ratio=args.duplicates, seed=args.seed, profile=args.profile)
    print("\n".join(report(plan, result, profile)))
    found = problems(plan, result)
    if found:
        print("\nPROBLEMS:\n" + "\n".join(f"- {p}" for p in found), file=sys.stderr)
        print(log_tail, file=sys.stderr)
        return 1
    return 0


def measure(*, total: int = 2000, concurrency: int = 8, duplicate_ratio: float = 0.2, seed: int = 7,
            profile: bool = False) -> tuple[Plan, Result, dict[str, Any] | None, str]:
    """The plan against a fresh local stack: (plan, result, moto profile or None, the end of the stack's log)."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_dir:
        tmp = Path(tmp_dir)
        profile_path = str(tmp / "profile.json") if profile else None
        process, base_url, log = _start(tmp, profile_path)

        def token(tenant_id: str, admin: bool = True) -> str:
            answer = requests.post(f"{base_url}/_local/token", json={"tenant_id": tenant_id, "admin": admin},
                                   timeout=30)
            answer.raise_for_status()
            return str(answer.json()["id_token"])

        try:
            plan, result = run_load(base_url, token, total=total, concurrency=concurrency,
                                    duplicate_ratio=duplicate_ratio, seed=seed)
        finally:
            process.send_signal(signal.SIGTERM)  # the profile is written as the stack stops
            try:
                process.wait(timeout=180)  # the stream poller may still be working through the backlog
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        timings = json.loads(Path(profile_path).read_text()) if profile_path and Path(profile_path).exists() else None
        return plan, result, timings, log.read_text(errors="replace")[-3000:]

if __name__ == "__main__":
    raise SystemExit(main())
