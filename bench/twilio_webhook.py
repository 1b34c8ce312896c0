"""Warm in-process time of the Twilio inbound webhook handler (``python -m bench.twilio_webhook [N]``).

The real handler, loaded like Lambda loads it (``local.runtime``), against resources created from template.yaml in
moto, with signed HTTP API v2 events. After a warm-up (cold start, channel resolved, token decrypted), N inbound
text messages are timed with ``time.perf_counter`` in three ways:

- ``stubbed``: moto stopped, the one AWS call of the warm path (TransactWriteItems) answered by a canned 200 at
  botocore's ``before-send``: our code + Powertools + botocore serialization/signing, no storage latency;
- ``moto, handler only``: the same invocations against moto with the time inside the AWS call subtracted;
- ``moto, total``: including moto's in-process DynamoDB (with ``local.moto_transactions``, as the local stack
  runs it: a transaction no longer deep-copies its tables), which says more about moto than about the handler.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

BASE_URL = "https://gateway.example.test"
TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0" * 32
NUMBER = "+14155238886"


def _summary(label: str, samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    n = len(ordered)
    return {
        "label": label,
        "n": n,
        "median": statistics.median(ordered),
        "mean": statistics.mean(ordered),
        "p90": ordered[min(n - 1, int(0.9 * n))],
        "p99": ordered[min(n - 1, int(0.99 * n))],
        "min": ordered[0],
    }


@contextlib.contextmanager
def _aws_time() -> Iterator[list[float]]:
    import botocore.client

    spent = [0.0]
    original = botocore.client.BaseClient._make_api_call

    def timed(self: Any, operation: str, params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return original(self, operation, params)
        finally:
            spent[0] += time.perf_counter() - started

    botocore.client.BaseClient._make_api_call = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def measure(n: int = 200) -> list[dict[str, Any]]:
    from local.testing import FAKE_AWS_ENV, UNSAFE_AWS_ENV

    for name in UNSAFE_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)

    import boto3
    from botocore.awsrequest import AWSResponse
    from moto import mock_aws
    from twilio.request_validator import RequestValidator

    from local import TEMPLATE_PATH
    from local.moto_transactions import make_transactions_cheap
    from local.provision import provision
    from local.runtime import FunctionRuntime
    from local.template import load_template
    from local.testing import ApiEvents, id_token_claims

    template = load_template(TEMPLATE_PATH)
    events = ApiEvents(template)
    make_transactions_cheap()
    moto = mock_aws()
    moto.start()
    try:
        resources = provision(boto3.session.Session(), template, "bench", parameters={"PublicBaseUrl": BASE_URL})
        os.environ.update(resources.globals_env())
        runtime = FunctionRuntime(resources)
        created = runtime.invoke("ChannelsApiFunction", events("POST", "/v1/channels", claims=id_token_claims("acme"),
                                                               json={"provider": "twilio", "name": "Bench",
                                                                     "phone_number": NUMBER, "account_sid": ACCOUNT,
                                                                     "auth_token": TOKEN}))
        assert created["statusCode"] == 201, created

        def event(i: int) -> dict[str, Any]:
            sid = "SM" + str(i).rjust(32, "0")
            params = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT,
                      "From": "whatsapp:+14155550100", "To": f"whatsapp:{NUMBER}", "Body": "Hi, what's the price?",
                      "NumMedia": "0", "ProfileName": "Zoë", "WaId": "14155550100", "SmsStatus": "received",
                      "NumSegments": "1", "ApiVersion": "2010-04-01", "MessageType": "text"}
            signature = RequestValidator(TOKEN).compute_signature(BASE_URL + "/webhooks/twilio", params)
            return events("POST", "/webhooks/twilio", form=params, headers={"X-Twilio-Signature": signature})

        def run(first: int, spent: list[float] | None = None) -> tuple[list[float], list[float]]:
            prepared = [event(first + i) for i in range(n)]
            totals, handler_only = [], []
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # Powertools logs to stdout
                for prepared_event in prepared:
                    if spent is not None:
                        spent[0] = 0.0
                    started = time.perf_counter()
                    answer = runtime.invoke("WebhookTwilioFunction", prepared_event)
                    elapsed = time.perf_counter() - started
                    assert answer["statusCode"] == 200, answer
                    totals.append(elapsed * 1000)
                    handler_only.append((elapsed - (spent[0] if spent else 0.0)) * 1000)
            return totals, handler_only

        run(0)  # warm-up: cold start, channel route and decrypted token cached
        with _aws_time() as spent:
            totals, handler_only = run(10_000, spent)
    finally:
        moto.stop()

    from gateway.store.models import transaction_connection

    class _Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b"{}"

    def canned(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "bench"}, _Raw())

    events_hook: Callable[..., Any] = canned
    transaction_connection().client.meta.events.register_first("before-send.dynamodb.TransactWriteItems", events_hook)
    try:
        stubbed, _ = run(20_000)
    finally:
        transaction_connection().client.meta.events.unregister("before-send.dynamodb.TransactWriteItems", events_hook)
    return [
        _summary("stubbed DynamoDB transport", stubbed),
        _summary("moto, handler only (AWS call subtracted)", handler_only),
        _summary("moto, total", totals),
    ]


def report(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| warm inbound text | n | median ms | mean ms | p90 ms | p99 ms | min ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['n']} | {r['median']:.2f} | {r['mean']:.2f} | {r['p90']:.2f} | "
                     f"{r['p99']:.2f} | {r['min']:.2f} |")
    return lines


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print("\n".join(report(measure(n))))


if __name__ == "__main__":
    main()
