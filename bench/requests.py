"""AWS requests per warm inbound message, status and send, counted at botocore, and the cost model built on them.

The real handlers (loaded like Lambda loads them), moto in-process with everything from template.yaml, the local
provider sandbox for Twilio/Meta, and the stream poller feeding the inbound processor. Every AWS call goes
through ``botocore.client.BaseClient._make_api_call``, which is wrapped to record (service, operation), and for
TransactWriteItems also its number of items (``dynamodb:TransactWriteItems/items``: what it is billed by).
``PYTHONPATH=layers/common:. python -m bench.requests``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

BASE_URL = "https://gateway.example.test"
TWILIO_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0" * 32
TWILIO_NUMBER = "+14155238886"
META_SECRET = "bench-meta-app-secret"
PHONE_NUMBER_ID = "106540352242922"
CONTACT = "+14155550100"
WARM_ROUNDS = 5
ITEMS = "TransactWriteItems/items"

# Prices (us-east-1, on-demand, 2026 list prices; arm64 Lambda). Change here, the table follows.
PRICE = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm": 0.0000133334,
    "http_api_request": 1.00 / 1e6,
    "ddb_write_request_unit": 0.625 / 1e6,
    "ddb_read_request_unit": 0.125 / 1e6,
    "events_put": 1.00 / 1e6,
    "s3_put": 0.005 / 1e3,
    "kms_request": 0.03 / 1e4,
}


@contextlib.contextmanager
def counting() -> Iterator[Counter[tuple[str, str]]]:
    import botocore.client

    calls: Counter[tuple[str, str]] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counted(self: Any, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        calls[(service, operation)] += 1
        if operation == "TransactWriteItems":
            calls[(service, ITEMS)] += len(params.get("TransactItems") or [])
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def measure() -> dict[str, dict[str, float]]:
    from local.testing import FAKE_AWS_ENV, UNSAFE_AWS_ENV

    for name in UNSAFE_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)

    import boto3
    from moto import mock_aws
    from twilio.request_validator import RequestValidator

    from local import TEMPLATE_PATH
    from local.http_gateway import LocalHttpServer, serve_in_thread
    from local.poller import StreamPoller
    from local.provision import provision
    from local.runtime import FunctionRuntime
    from local.sandbox import default_sandbox
    from local.template import load_template
    from local.testing import ApiEvents, id_token_claims

    template = load_template(TEMPLATE_PATH)
    events = ApiEvents(template)
    sandbox = default_sandbox()
    server = LocalHttpServer(("127.0.0.1", 0), sandbox.handle)
    serve_in_thread(server, "sandbox")
    sandbox_url = f"http://127.0.0.1:{server.port}"
    results: dict[str, dict[str, float]] = {}
    # The sandbox posts status callbacks to the (unresolvable) public URL of sends; they are not measured here.
    logging.getLogger("local.sandbox").setLevel(logging.ERROR)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open: loggers created during the run keep the stream
    moto = mock_aws()
    moto.start()
    try:
        resources = provision(boto3.session.Session(), template, "bench", parameters={"PublicBaseUrl": BASE_URL})
        os.environ.update(resources.globals_env())
        os.environ.update({"TWILIO_API_BASE_URL": sandbox_url, "META_GRAPH_BASE_URL": sandbox_url,
                           "MEDIA_ALLOWED_HOSTS": "127.0.0.1", "MEDIA_ALLOW_LOOPBACK": "true"})
        from gateway.aws import reset_clients
        from gateway.config import get_settings

        get_settings.cache_clear()  # another benchmark in this process may have read another deployment's
        reset_clients()
        runtime = FunctionRuntime(resources)
        poller = StreamPoller(resources, runtime.invoke, lambda s: boto3.client(s, region_name="us-east-1"))
        admin = id_token_claims("acme")

        def call(function: str, event: dict[str, Any], expect: int) -> dict[str, Any]:
            with contextlib.redirect_stdout(devnull):  # Powertools logs to stdout; the figures are what we print
                answer = runtime.invoke(function, event)
            assert answer["statusCode"] == expect, answer
            return answer

        call("ChannelsApiFunction", events("POST", "/v1/channels", claims=admin, json={
            "provider": "twilio", "name": "Bench", "phone_number": TWILIO_NUMBER, "account_sid": ACCOUNT,
            "auth_token": TWILIO_TOKEN}), 201)
        call("ChannelsApiFunction", events("POST", "/v1/channels", claims=admin, json={
            "provider": "meta", "name": "Bench", "phone_number_id": PHONE_NUMBER_ID, "business_account_id": "1",
            "display_phone_number": "+15550783881", "access_token": "bench-meta-token",
            "app_secret": META_SECRET}), 201)

        def twilio_inbound(i: int) -> dict[str, Any]:
            sid = "SM" + str(i).rjust(32, "0")
            params = {"MessageSid": sid, "AccountSid": ACCOUNT, "From": f"whatsapp:{CONTACT}",
                      "To": f"whatsapp:{TWILIO_NUMBER}", "Body": "hello", "NumMedia": "0", "ProfileName": "Zoë",
                      "WaId": CONTACT[1:]}
            signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE_URL + "/webhooks/twilio", params)
            return events("POST", "/webhooks/twilio", form=params, headers={"X-Twilio-Signature": signature})

        def twilio_status(sid: str, status: str) -> dict[str, Any]:
            params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT,
                      "From": f"whatsapp:{TWILIO_NUMBER}", "To": f"whatsapp:{CONTACT}"}
            url = BASE_URL + "/webhooks/twilio/status"
            signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
            return events("POST", "/webhooks/twilio/status", form=params, headers={"X-Twilio-Signature": signature})

        def meta_inbound(i: int) -> dict[str, Any]:
            body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                    "contacts": [{"profile": {"name": "Zoë"}, "wa_id": "14155550101"}],
                    "messages": [{"from": "14155550101", "id": f"wamid.bench{i}", "timestamp": "1750263773",
                                  "type": "text", "text": {"body": "hello"}}]}}]}]}).encode()
            signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
            return events("POST", "/webhooks/meta", body=body,
                          headers={"content-type": "application/json", "x-hub-signature-256": signature})

        def per_call(label: str, function: str, make: Any, expect: int = 200) -> None:
            call(function, make(0), expect)  # cold: routes, credentials, clients
            with counting() as calls:
                for i in range(1, WARM_ROUNDS + 1):
                    call(function, make(i), expect)
            results[label] = {f"{s}:{o}": n / WARM_ROUNDS for (s, o), n in sorted(calls.items())}

        per_call("Twilio inbound text (webhook_twilio)", "WebhookTwilioFunction", twilio_inbound)
        per_call("Meta inbound text (webhook_meta)", "WebhookMetaFunction", meta_inbound)

        # The inbound processor as the stream feeds it: auto-reply off, no media; poller's own stream reads excluded.
        poller.poll_once()
        call("WebhookTwilioFunction", twilio_inbound(100), 200)
        with counting() as calls:
            processed = 0
            deadline = time.monotonic() + 10
            while processed == 0 and time.monotonic() < deadline:
                with contextlib.redirect_stdout(devnull):
                    processed = poller.poll_once()
        results["inbound processing per message (inbound_processor)"] = {
            f"{s}:{o}": float(n) for (s, o), n in sorted(calls.items()) if s != "dynamodbstreams"
        }

        conversation = json.loads(call("InboxApiFunction", events("GET", "/v1/conversations", claims=admin),
                                       200)["body"])["items"]
        twilio_conversation = next(c["id"] for c in conversation if c["provider"] == "twilio")

        def send(i: int) -> dict[str, Any]:
            return events("POST", f"/v1/conversations/{twilio_conversation}/messages", claims=admin,
                          json={"type": "text", "text": f"reply {i}"})

        sent: list[str] = []
        call("SendMessageFunction", send(0), 201)
        with counting() as calls:
            for i in range(1, WARM_ROUNDS + 1):
                answer = call("SendMessageFunction", send(i), 201)
                sent.append(json.loads(answer["body"])["provider_message_id"])
        results["send text (send_message)"] = {f"{s}:{o}": n / WARM_ROUNDS for (s, o), n in sorted(calls.items())}

        call("StatusCallbackFunction", twilio_status(sent[0], "sent"), 200)
        with counting() as calls:
            for sid in sent[1:]:
                call("StatusCallbackFunction", twilio_status(sid, "delivered"), 200)
        results["Twilio status callback (status_callback)"] = {
            f"{s}:{o}": n / (len(sent) - 1) for (s, o), n in sorted(calls.items())
        }

        meta_conversation = next(c["id"] for c in conversation if c["provider"] == "meta")
        wamids = [json.loads(call("SendMessageFunction", events(
            "POST", f"/v1/conversations/{meta_conversation}/messages", claims=admin,
            json={"type": "text", "text": f"reply {i}"}), 201)["body"])["provider_message_id"]
            for i in range(WARM_ROUNDS + 1)]

        def meta_status(i: int) -> dict[str, Any]:
            body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                    "statuses": [{"id": wamids[i], "status": "delivered", "timestamp": "1750263774",
                                  "recipient_id": "14155550101"}]}}]}]}).encode()
            signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
            return events("POST", "/webhooks/meta", body=body,
                          headers={"content-type": "application/json", "x-hub-signature-256": signature})

        per_call("Meta status (webhook_meta)", "WebhookMetaFunction", meta_status)
    finally:
        moto.stop()
        server.shutdown()
        server.server_close()
    return results


def report(results: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| path (warm) | AWS requests | of which DynamoDB |", "|---|---|---:|"]
    for label, calls in results.items():
        items = calls.get(f"dynamodb:{ITEMS}", 0.0)
        requests = {k: v for k, v in calls.items() if not k.endswith(ITEMS)}
        detail = ", ".join(
            f"{k} ×{v:g}" + (f" ({items / v:g} items)" if k == "dynamodb:TransactWriteItems" else "")
            for k, v in requests.items()
        ) or "none"
        dynamodb = sum(v for k, v in requests.items() if k.startswith("dynamodb:"))
        lines.append(f"| {label} | {detail} | {dynamodb:g} |")
    return lines


def cost_model(results: dict[str, dict[str, float]]) -> list[str]:
    """Per million inbound text messages: webhook + processing + 3 statuses of one reply sent per message.

    Request units: a TransactWriteItems costs 2 WRU per item, its ConditionCheck items included (transactions
    double), an UpdateItem or PutItem of an item ≤ 1 KB costs 1 WRU, a strongly consistent GetItem 1 RRU; items
    are under 1 KB here.
    Lambda: 512 MB, billed durations assumed 20 ms per webhook/status and 60 ms per processing or send
    (measured in-process warm times are 1-2 ms of our code; the rest is DynamoDB latency).
    """
    inbound = results["Twilio inbound text (webhook_twilio)"]
    processing = results["inbound processing per message (inbound_processor)"]
    status = results["Twilio status callback (status_callback)"]
    send = results["send text (send_message)"]

    def ddb_cost(calls: dict[str, float]) -> float:
        cost = 0.0
        for key, n in calls.items():
            service, operation = key.split(":")
            if service != "dynamodb":
                continue
            if operation == ITEMS:
                cost += n * 2 * PRICE["ddb_write_request_unit"]
            elif operation == "TransactWriteItems":
                continue  # billed by its items
            elif operation in {"PutItem", "UpdateItem", "DeleteItem"}:
                cost += n * PRICE["ddb_write_request_unit"]
            else:
                cost += n * PRICE["ddb_read_request_unit"]
        return cost

    def other_cost(calls: dict[str, float]) -> float:
        cost = 0.0
        for key, n in calls.items():
            service = key.split(":")[0]
            cost += n * {"events": PRICE["events_put"], "kms": PRICE["kms_request"], "s3": PRICE["s3_put"]}.get(
                service, 0.0
            )
        return cost

    def lam(ms: float) -> float:
        return PRICE["lambda_request"] + 0.5 * ms / 1000 * PRICE["lambda_gb_second_arm"]

    per_message = {
        "API Gateway (HTTP API): webhook + 1 send + 3 status callbacks": 5 * PRICE["http_api_request"],
        "Lambda: webhook, processing, send, 3 statuses": lam(20) + lam(60) + lam(60) + 3 * lam(20),
        "DynamoDB: webhook, processing, send, 3 statuses": ddb_cost(inbound) + ddb_cost(processing)
        + ddb_cost(send) + 3 * ddb_cost(status),
        "EventBridge / KMS / S3 calls": other_cost(inbound) + other_cost(processing) + other_cost(send)
        + 3 * other_cost(status),
        "DynamoDB stream reads (free for Lambda triggers)": 0.0,
    }
    total = sum(per_message.values())
    lines = ["| per million inbound messages (each answered once, 3 statuses) | USD |", "|---|---:|"]
    lines += [f"| {k} | {v * 1e6:.2f} |" for k, v in per_message.items()]
    lines += [f"| **total** | **{total * 1e6:.2f}** |", "",
              "Media adds one S3 PUT per part (5 MB parts) plus storage; Lambda time for media is dominated by the"
              " download. Prices: us-east-1 on-demand list prices in `bench/requests.py`."]
    return lines


if __name__ == "__main__":
    measured = measure()
    print("\n".join([*report(measured), "", *cost_model(measured)]))
