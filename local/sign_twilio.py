"""``python -m local.sign_twilio --token TOKEN [--url URL] [--set Name=Value ...] EVENT_JSON``

Sign an HTTP API v2 event (``events/twilio_*.json``) the way Twilio signs its webhooks: twilio-python's
``RequestValidator`` over the URL Twilio would call and the event's form parameters (blank values included), the
result in the event's ``x-twilio-signature`` header. The body is re-encoded base64 as HTTP API delivers form posts.

The URL defaults to the running ``make dev``'s gateway (``.local/state.json``; else ``http://127.0.0.1:3000``) +
the event's ``rawPath`` (+ ``?rawQueryString``): exactly the channel's ``webhook_url`` / ``status_callback_url``.
``--set`` changes parameters before signing (``--set MessageSid=SM…`` for a message not seen before; ``--new-sid``
generates one). The signed event goes to stdout, or to ``-o FILE``.

    python -m local.sign_twilio --token "$TOKEN" --new-sid events/twilio_inbound.json -o .local/signed.json
    make invoke FUNCTION=webhook_twilio EVENT=.local/signed.json
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

DEFAULT_BASE_URL = "http://127.0.0.1:3000"


def form_of(event: dict[str, Any]) -> list[tuple[str, str]]:
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    return parse_qsl(body.decode("utf-8"), keep_blank_values=True)


def base_url() -> str:
    try:
        from local.state import read_state

        return str(read_state()["gateway_url"])
    except (OSError, RuntimeError, KeyError, ValueError):
        return DEFAULT_BASE_URL


def sign_event(event: dict[str, Any], token: str, url: str | None = None,
               changes: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy of ``event`` with ``changes`` applied to its form and a valid ``x-twilio-signature`` for ``url``."""
    signed = json.loads(json.dumps(event))
    pairs = form_of(signed)
    for name, value in (changes or {}).items():
        if any(k == name for k, _ in pairs):
            pairs = [(k, value if k == name else v) for k, v in pairs]
        else:
            pairs.append((name, value))
    if url is None:
        url = base_url().rstrip("/") + str(signed.get("rawPath") or "/")
        if signed.get("rawQueryString"):
            url += "?" + signed["rawQueryString"]
    raw = urlencode(pairs).encode()
    signed["body"] = base64.b64encode(raw).decode("ascii")
    signed["isBase64Encoded"] = True
    headers = {k: v for k, v in (signed.get("headers") or {}).items() if k.lower() != "x-twilio-signature"}
    headers["content-length"] = str(len(raw))
    headers["x-twilio-signature"] = twilio_signature(token, url, pairs)
    signed["headers"] = headers
    return signed


def twilio_signature(token: str, url: str, pairs: list[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` of a form post of ``pairs`` to ``url`` (repeated names included), as Twilio signs."""
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)

    class _Multi(dict[str, str]):  # RequestValidator signs every value of a repeated name through getall
        def getall(self, key: str) -> list[str]:
            return list(params[key])

    return str(RequestValidator(token).compute_signature(url, _Multi({k: v[0] for k, v in params.items()})))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sign_twilio", description=__doc__.split("\n\n")[1])
    parser.add_argument("event", type=Path, help="HTTP API v2 event JSON with a form body")
    parser.add_argument("--token", required=True, help="the channel's Twilio auth token")
    parser.add_argument("--url", help="the URL Twilio calls (default: running gateway + rawPath)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="change a form parameter")
    parser.add_argument("--new-sid", action="store_true", help="give MessageSid (and SmsSid...) a fresh value")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changes = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"error: --set wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        changes[name] = value
    if args.new_sid:
        fresh = "SM" + secrets.token_hex(16)
        names = {k for k, _ in form_of(event)}
        changes.update({n: fresh for n in ("MessageSid", "SmsSid", "SmsMessageSid") if n in names or n == "MessageSid"})
    text = json.dumps(sign_event(event, args.token, args.url, changes), indent=2) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
