"""``python -m local.invoke [FUNCTION] EVENT_JSON`` (``make invoke EVENT=… [FUNCTION=…]``).

Runs one function's handler once, in this process, against the resources of the running ``make dev`` (read from
``.local/state.json``), with the same environment the gateway gives it, and prints the response as JSON.
FUNCTION is the function's directory name (``channels_api``) or logical id (``ChannelsApiFunction``); without it,
the function is the one template.yaml routes the event to (its ``routeKey``, or the stream of its records).

Ids that exist only at run time are written as placeholders in the event and resolved first, through the API
as the event's own caller (its JWT claims) would see it: ``{{channel:+14155238886}}`` is the id of the caller's
channel for that number (Twilio) or phone number id (Meta), ``{{conversation:+14155550100}}`` the id of the
caller's newest conversation with that contact. ``--print-event`` prints the resolved event instead of invoking.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from local.apigw import ApiContext, HttpRequest, Router, build_event
from local.dev import aws_env
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.state import read_state
from local.template import FunctionSpec, Template, load_template

PLACEHOLDER = re.compile(r"\{\{(channel|conversation):([^{}]+)\}\}")


class PlaceholderError(LookupError):
    """A placeholder names something the caller does not have (yet)."""


def function_for_event(template: Template, event: Any) -> FunctionSpec:
    """The function template.yaml delivers ``event`` to: by its ``routeKey`` (HTTP API), or the function fed by
    the DynamoDB stream its records come from."""
    if isinstance(event, dict) and isinstance(event.get("routeKey"), str):
        for route in template.http_routes():
            if route.route_key == event["routeKey"]:
                return template.function(route.function_id)
        raise KeyError(f"template.yaml has no route {event['routeKey']!r}")
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:dynamodb" for r in records
    ):
        sources = template.stream_sources()
        arn = str(records[0].get("eventSourceARN") or "")
        named = [s for s in sources if f"-{s.table_id}/stream/" in arn or f"/{s.table_id}/stream/" in arn]
        candidates = named or sources
        if len(candidates) == 1:
            return template.function(candidates[0].function_id)
    raise KeyError("cannot tell which function this event is for: name it (FUNCTION=…)")


def resolve_placeholders(event: Any, lookup: Callable[[str, str], str]) -> Any:
    """``event`` with every ``{{kind:key}}`` in its strings replaced by ``lookup(kind, key)``."""
    if isinstance(event, str):
        return PLACEHOLDER.sub(lambda m: lookup(m.group(1), m.group(2).strip()), event)
    if isinstance(event, dict):
        return {k: resolve_placeholders(v, lookup) for k, v in event.items()}
    if isinstance(event, list):
        return [resolve_placeholders(v, lookup) for v in event]
    return event


class StackIds:
    """Resolves placeholders by calling the running stack's own list routes with the event's claims."""

    def __init__(self, runtime: FunctionRuntime, template: Template, claims: dict[str, Any] | None) -> None:
        self.runtime, self.router, self.claims = runtime, Router(template.http_routes()), claims
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, key: str) -> str:
        if (kind, key) not in self._cache:
            self._cache[kind, key] = self._channel(key) if kind == "channel" else self._conversation(key)
        return self._cache[kind, key]

    def _list(self, path: str) -> list[dict[str, Any]]:
        if self.claims is None:
            raise PlaceholderError(f"the event has no JWT claims, so nothing to look {path} up as")
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = urlencode({"limit": 100, **({"cursor": cursor} if cursor else {})})
            match = self.router.match("GET", path)
            assert match is not None, path
            request = HttpRequest(method="GET", path=path, query_string=query, headers=[("host", "127.0.0.1")])
            event = build_event(request, match, api=ApiContext(), claims=self.claims)
            answer = self.runtime.invoke(match.route.function_id, event)
            if not isinstance(answer, dict) or answer.get("statusCode") != 200:
                raise PlaceholderError(f"GET {path} answered {answer!r}")
            page = json.loads(answer["body"])
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def _channel(self, address: str) -> str:
        channels = [c for c in self._list("/v1/channels")
                    if address in (c.get("phone_number"), c.get("phone_number_id"))]
        channels.sort(key=lambda c: (c.get("status") == "active", c.get("created_at") or ""), reverse=True)
        if not channels:
            raise PlaceholderError(
                f"tenant {self._tenant()} has no channel for {address}: connect it first (README, 'Try it')"
            )
        return str(channels[0]["id"])

    def _conversation(self, contact: str) -> str:
        for conversation in self._list("/v1/conversations"):  # newest first
            if (conversation.get("contact") or {}).get("phone") == contact:
                return str(conversation["id"])
        raise PlaceholderError(
            f"tenant {self._tenant()} has no conversation with {contact} yet: let the contact write first "
            "(e.g. make invoke EVENT=events/twilio_inbound.json)"
        )

    def _tenant(self) -> str:
        return str((self.claims or {}).get("custom:tenant_id", "?"))


def event_claims(event: Any) -> dict[str, Any] | None:
    jwt = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") if isinstance(event, dict) else None
    claims = (jwt or {}).get("claims")
    return dict(claims) if isinstance(claims, dict) else None


def signed_url_note(event: Any, state: dict[str, Any]) -> str | None:
    """A hint when a Twilio-signed event was made for another URL than this stack's (the port, typically)."""
    headers = event.get("headers") if isinstance(event, dict) else None
    if not isinstance(headers, dict) or "x-twilio-signature" not in headers:
        return None
    public = str((state.get("resources") or {}).get("env_overrides", {}).get("PUBLIC_BASE_URL") or "")
    signed_for = f"http://{headers.get('host', '')}"
    if not public or urlsplit(public).netloc == urlsplit(signed_for).netloc:
        return None
    return (f"note: this event was made for {signed_for}, and Twilio signatures cover the URL; this stack's webhook "
            f"URLs start with {public}. If it answers 401, re-sign it: python -m local.sign_twilio --token <auth "
            "token> <event> -o .local/signed.json (see events/README.md)")


def invoke(function: str | None, event: Any, state: dict[str, Any], *, resolve_only: bool = False) -> Any:
    template = load_template(state["template"])
    resources = Resources.from_dict(template, state["resources"])
    spec = template.function(function) if function else function_for_event(template, event)
    os.environ.update(aws_env(state["aws_endpoint"], state["region"]))
    os.environ.update(resources.function_env(spec.logical_id))
    runtime = FunctionRuntime(resources)
    if PLACEHOLDER.search(json.dumps(event)):
        event = resolve_placeholders(event, StackIds(runtime, template, event_claims(event)))
    if resolve_only:
        return event
    return runtime.invoke(spec.logical_id, event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", nargs="?", help="function directory name (channels_api) or logical id; "
                                                    "default: the one template.yaml routes the event to")
    parser.add_argument("event", type=Path, help="path of the event JSON file")
    parser.add_argument("--print-event", action="store_true", help="print the event with placeholders resolved")
    parser.add_argument("-o", "--output", type=Path, help="write the response (or event) JSON here, not to stdout")
    args = parser.parse_args(argv)
    try:
        state = read_state()
        event = json.loads(args.event.read_text())
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = invoke(args.function, event, state, resolve_only=args.print_event)
    except (KeyError, PlaceholderError) as exc:  # unknown function, unresolvable placeholder
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except Exception:
        # What Lambda would report as the invocation's error.
        traceback.print_exc()
        return 1
    note = signed_url_note(event, state)
    if note:
        print(note, file=sys.stderr)
    text = json.dumps(result, indent=2, default=str)
    if args.output:
        args.output.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
