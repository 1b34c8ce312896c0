"""Fuzzing harness: every HTTP handler of template.yaml, in-process, against one moto per module.

- ``FuzzStack``: moto provisioned ONCE from template.yaml (module-scoped, reused by every hypothesis example),
  the provider sandbox on a local port, a Twilio and a Meta channel (fixed ids) with conversations. ``event``
  builds a payload 2.0 event with the project's one event builder (``local.testing.ApiEvents`` →
  ``local.apigw``); ``invoke`` runs the handler the template routes it to, like Lambda, and checks the answer:
  a 2xx, or a 4xx with the contract's error body; never a 5xx, never an exception. Every case is counted per
  handler (and per status), so the figures in docs/RELIABILITY.md come from the run itself.
- Strategies: raw bodies in every encoding, JSON values (lone surrogates, NaN, huge numbers, deep nesting),
  headers, query strings, claims in both of the authorizer's forms, and event mutations (``isBase64Encoded``
  with bytes that are not base64, no body, an empty body).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from gateway.domain import ids
from hypothesis import strategies as st

from local import TEMPLATE_PATH
from local.http_gateway import LocalHttpServer, serve_in_thread
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.sandbox import default_sandbox
from local.template import Template, load_template
from local.testing import ApiEvents, id_token_claims, provisioned_moto

# ------------------------------------------------------------------------------------------ fixed facts
TWILIO_NUMBER = "+14155238886"
TWILIO_ACCOUNT = "AC" + "f0" * 16
TWILIO_TOKEN = "fuzz-twilio-auth-token-0123456789"
META_PHONE_NUMBER_ID = "106540352242922"
META_APP_SECRET = "fuzz-meta-app-secret-0123456789"
META_ACCESS_TOKEN = "fuzz-meta-access-token-0123456789"
META_VERIFY_TOKEN = "fuzz-verify-token-0123"
TENANT = "acme"
CONTACTS = ("+14155550100", "+14155550101", "+447700900123")
# The seeded channels get fixed ids, so that conversation and message ids (derived from them) are known before
# the stack exists: strategies and regression examples can name them.
TWILIO_CHANNEL_ID = "ch_fuzztwilio0000000000000"
META_CHANNEL_ID = "ch_fuzzmeta000000000000000"
CONVERSATIONS = {
    "twilio": ids.conversation_id(TENANT, TWILIO_CHANNEL_ID, CONTACTS[0]),
    "meta": ids.conversation_id(TENANT, META_CHANNEL_ID, CONTACTS[0]),
}
SEEDED_SIDS = [f"SM{n:032d}" for n in (0, 1, 2, 99)]
MESSAGE_IDS = [ids.stable_id("msg", TENANT, "twilio", sid) for sid in SEEDED_SIDS] + [
    ids.stable_id("msg", TENANT, "meta", "wamid.seed-0")
]
MESSAGES_PARTITION = f"TENANT#{TENANT}#CONV#{CONVERSATIONS['twilio']}"
# Placeholders resolved when the event is built (``FuzzStack.resolve``): real cursors exist only at run time.
REAL_CURSORS = {"conversations": "@cursor-conversations@", "messages": "@cursor-messages@"}


# ------------------------------------------------------------------------------------------ harness
class Failure(AssertionError):
    """A handler answered 5xx, raised, or answered something that is not an HTTP API response."""


@dataclass
class Tally:
    """Cases per handler and per status code; ``storage`` counts the cases that reached a storage write."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    storage: Counter[str] = field(default_factory=Counter)

    def add(self, handler: str, status: int) -> None:
        self.cases[handler] += 1
        self.statuses.setdefault(handler, Counter())[status] += 1

    def summary(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "cases": self.cases[name],
                "storage": self.storage[name],
                "statuses": {str(k): v for k, v in sorted(self.statuses[name].items())},
            }
            for name in sorted(self.cases)
        }


class _ErrorLog(logging.Handler):
    """Remembers the last logged exception, so a 5xx fails with its traceback instead of a bare status."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = "".join(logging.Formatter().formatException(record.exc_info))

    def take(self) -> str | None:
        last, self.last = self.last, None
        return last


@dataclass
class FuzzStack:
    resources: Resources
    runtime: FunctionRuntime
    events: ApiEvents
    sandbox_url: str
    tally: Tally = field(default_factory=Tally)
    twilio_channel: dict[str, Any] = field(default_factory=dict)
    meta_channel: dict[str, Any] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)  # "conversations" | "messages" → a real next_cursor
    _errors: _ErrorLog = field(default_factory=_ErrorLog)
    _handler_names: dict[str, str] = field(default_factory=dict)

    # ---------------------------------------------------------------- events
    def resolve(self, text: str) -> str:
        for name, placeholder in REAL_CURSORS.items():
            text = text.replace(placeholder, self.cursors.get(name, ""))
        return text

    def event(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        json_body: Any = None,
        query: str = "",
        headers: Sequence[tuple[str, str]] = (),
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.events(method, path, body=body, json=json_body, query=query, headers=list(headers), claims=claims)

    def function_for(self, event: Mapping[str, Any]) -> str:
        """The function of the event's route (``routeKey``: the route matched on the raw path, as in AWS)."""
        route_key = event["routeKey"]
        functions = {route.route_key: route.function_id for route in self.events.router.routes}
        assert route_key in functions, f"no route {route_key}"
        return functions[route_key]

    def handler_name(self, function_id: str) -> str:
        """``functions/<name>/app.py`` → ``<name>`` (what docs/RELIABILITY.md reports)."""
        if function_id not in self._handler_names:
            spec = self.resources.template.function(function_id)
            self._handler_names[function_id] = spec.code_dir.name
        return self._handler_names[function_id]

    # ---------------------------------------------------------------- invoking
    def invoke(self, event: dict[str, Any], *, count: bool = True) -> dict[str, Any]:
        """Invoke the handler the template routes ``event`` to; fail on anything but a well-formed 2xx/4xx."""
        function_id = self.function_for(event)
        name = self.handler_name(function_id)
        self._errors.take()
        try:
            response = self.runtime.invoke(function_id, event)
        except Exception as error:  # an exception out of the handler: Lambda would report a 502 for it
            raise Failure(f"{name} raised {type(error).__name__}: {error}") from error
        status = check_response(name, response, self._errors.take())
        if count:
            self.tally.add(name, status)
        return response

    def api(self, method: str, path: str, *, tenant: str = TENANT, admin: bool = True, **kwargs: Any) -> Any:
        """A well-formed /v1 call for setting things up (not counted); returns the decoded body."""
        response = self.invoke(
            self.event(method, path, claims=id_token_claims(tenant, admin=admin), **kwargs), count=False
        )
        assert 200 <= response["statusCode"] < 300, response
        return json.loads(response["body"]) if response.get("body") else None


def check_response(name: str, response: Any, logged: str | None) -> int:
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise Failure(f"{name} returned something that is not an HTTP API response: {response!r:.500}")
    status = response["statusCode"]
    body = response.get("body")
    if status >= 500 or status < 200:
        trace = f"\nlogged:\n{logged}" if logged else ""
        raise Failure(f"{name} answered {status}: {str(body)[:1000]}{trace}")
    if body is not None and not isinstance(body, str):
        raise Failure(f"{name} answered a body that is not a string: {body!r:.200}")
    if status >= 400:
        try:
            error = json.loads(body or "")["error"]
            assert isinstance(error["code"], str) and error["code"]
            assert isinstance(error["message"], str) and error["message"]
        except (ValueError, KeyError, TypeError, AssertionError) as problem:
            raise Failure(f"{name} answered {status} without the contract's error body: {body!r:.500}") from problem
    return status


# ------------------------------------------------------------------------------------------ the stack
@contextlib.contextmanager
def fuzz_stack() -> Iterator[FuzzStack]:
    """moto from template.yaml + the provider sandbox, provisioned once; seeded with one channel per provider
    and one conversation each (tenant ``acme``)."""
    template: Template = load_template(TEMPLATE_PATH)
    monkeypatch = pytest.MonkeyPatch()
    sandbox = default_sandbox()
    server = LocalHttpServer(("127.0.0.1", 0), sandbox.handle)
    serve_in_thread(server, "fuzz-sandbox")
    url = f"http://127.0.0.1:{server.port}"
    try:
        # PUBLIC_BASE_URL is the sandbox too: Twilio status callbacks the sandbox posts after a send land there.
        with provisioned_moto(template, monkeypatch, parameters={"PublicBaseUrl": url}) as resources:
            for name in ("TWILIO_API_BASE_URL", "META_GRAPH_BASE_URL", "PUBLIC_BASE_URL"):
                monkeypatch.setenv(name, url)
            # moto copies whole tables (and their stream) for every TransactWriteItems; the local stack's patch
            # copies only the items a transaction names, so cases that reach storage stay cheap as tables grow.
            from local.moto_transactions import make_transactions_cheap

            make_transactions_cheap(monkeypatch.setattr)
            _reset_layer_caches()
            from gateway.observability import logger as gateway_logger

            stack = FuzzStack(resources, FunctionRuntime(resources), ApiEvents(template), url)
            gateway_logger.addHandler(stack._errors)  # Powertools' logger does not propagate to the root
            try:
                _seed(stack)
                yield stack
            finally:
                gateway_logger.removeHandler(stack._errors)
                _reset_layer_caches()
    finally:
        monkeypatch.undo()
        server.shutdown()
        server.server_close()


def _reset_layer_caches() -> None:
    from gateway.aws import reset_clients
    from gateway.config import get_settings

    get_settings.cache_clear()
    reset_clients()


def _seed(stack: FuzzStack) -> None:
    fixed = iter([TWILIO_CHANNEL_ID, META_CHANNEL_ID])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ids, "new_id", lambda prefix: next(fixed))
        stack.twilio_channel = stack.api("POST", "/v1/channels", json_body={
            "provider": "twilio", "name": "Fuzz", "phone_number": TWILIO_NUMBER, "account_sid": TWILIO_ACCOUNT,
            "auth_token": TWILIO_TOKEN,
        })
        stack.meta_channel = stack.api("POST", "/v1/channels", json_body={
            "provider": "meta", "name": "Fuzz Meta", "phone_number_id": META_PHONE_NUMBER_ID,
            "business_account_id": "419561257915477", "display_phone_number": "+15550783881",
            "access_token": META_ACCESS_TOKEN, "app_secret": META_APP_SECRET, "verify_token": META_VERIFY_TOKEN,
        })
    assert (stack.twilio_channel["id"], stack.meta_channel["id"]) == (TWILIO_CHANNEL_ID, META_CHANNEL_ID)
    # Two messages in the first conversation (a cursor to page), one each with the other contacts.
    for sid, contact in zip(SEEDED_SIDS, [*CONTACTS, CONTACTS[0]], strict=True):
        form = twilio_inbound_form(sid, contact)
        response = stack.invoke(twilio_event(stack, form, sign_with=TWILIO_TOKEN), count=False)
        assert response["statusCode"] == 200, response
    meta_body = json.dumps(meta_text_notification("wamid.seed-0", CONTACTS[0][1:])).encode()
    response = stack.invoke(meta_event(stack, meta_body, sign_meta(meta_body, META_APP_SECRET)), count=False)
    assert response["statusCode"] == 200, response
    listed = {item["id"] for item in stack.api("GET", "/v1/conversations", query="limit=100")["items"]}
    assert set(CONVERSATIONS.values()) <= listed, listed
    stack.cursors["conversations"] = stack.api("GET", "/v1/conversations", query="limit=1")["next_cursor"]
    path = f"/v1/conversations/{CONVERSATIONS['twilio']}/messages"
    stack.cursors["messages"] = stack.api("GET", path, query="limit=1")["next_cursor"]
    assert all(stack.cursors.values()), stack.cursors


# ------------------------------------------------------------------------------------------ provider requests
def twilio_inbound_form(sid: str, contact: str = CONTACTS[0], **extra: str) -> dict[str, str]:
    return {
        "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": "Zoë", "MessageType": "text", "SmsSid": sid,
        "WaId": contact[1:], "SmsStatus": "received", "Body": "Hello", "To": f"whatsapp:{TWILIO_NUMBER}",
        "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": TWILIO_ACCOUNT,
        "From": f"whatsapp:{contact}", "ApiVersion": "2010-04-01", **extra,
    }


def twilio_status_form(sid: str, status: str, contact: str = CONTACTS[0], **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
        "AccountSid": TWILIO_ACCOUNT, "From": f"whatsapp:{TWILIO_NUMBER}", "To": f"whatsapp:{contact}",
        "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01", **extra,
    }


class MultiForm(dict[str, str]):
    """A form with repeated names, as twilio-python's RequestValidator reads one (``getall``)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.pairs = list(pairs)
        for name, value in self.pairs:
            self.setdefault(name, value)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


def twilio_signature(token: str, url: str, form: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    from twilio.request_validator import RequestValidator

    params = form if isinstance(form, Mapping) else MultiForm(form)
    return str(RequestValidator(token).compute_signature(url, params))


def twilio_event(
    stack: FuzzStack,
    form: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    path: str = "/webhooks/twilio",
    sign_with: str | None = None,
    signature: str | None = None,
    query: str = "",
    headers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A form post as Twilio sends it (API Gateway base64-encodes it), signed over the channel's public URL."""
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    if sign_with is not None:
        url = stack.twilio_channel["webhook_url" if path == "/webhooks/twilio" else "status_callback_url"]
        signature = twilio_signature(sign_with, f"{url}?{query}" if query else url, form)
    all_headers = [("content-type", "application/x-www-form-urlencoded"), ("user-agent", "TwilioProxy/1.1")]
    if signature is not None:
        all_headers.append(("x-twilio-signature", signature))
    return stack.event("POST", path, body=urlencode(pairs).encode(), query=query,
                       headers=[*all_headers, *headers])


def sign_meta(body: bytes, secret: str) -> str:
    from tests.meta_support import sign

    return sign(body, secret)


def meta_text_notification(wamid: str, wa_id: str, text: str = "hello") -> dict[str, Any]:
    from tests.meta_support import change_value, notification, text_message

    return notification(change_value(META_PHONE_NUMBER_ID, messages=[text_message(wamid, text, sender=wa_id)]))


def meta_event(
    stack: FuzzStack, body: bytes, signature: str | None, *, headers: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    all_headers = [("content-type", "application/json"), ("user-agent", "facebookexternalua")]
    if signature is not None:
        all_headers.append(("x-hub-signature-256", signature))
    return stack.event("POST", "/webhooks/meta", body=body, headers=[*all_headers, *headers])


# ------------------------------------------------------------------------------------------ strategies
# Text of every kind: printable, control characters, astral, and (for JSON) lone surrogates that only a
# ``\udXXX`` escape can carry.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
texts = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec="ascii"), max_size=30),
    st.sampled_from(["", " ", "\x00", "null", "0", "-1", "1e309", "NaN", "‮", "🌵", "a" * 300, "#", "%", "\\"]),
)
texts_with_surrogates = st.one_of(texts, st.text(st.one_of(st.characters(), surrogates), min_size=1, max_size=8))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**38, max_value=10**400),
    st.floats(),
    texts_with_surrogates,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts_with_surrogates, children, max_size=4)
    ),
    max_leaves=12,
)


def dump_json(value: Any) -> bytes:
    """Python's JSON (NaN, Infinity allowed; surrogates escaped as ``\\udXXX``): what a careless client sends."""
    return json.dumps(value).encode("ascii")


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "text/plain",
    "text/xml",
    "application/xml",
    "application/octet-stream",
    "application/vnd.api+json",
    "image/png",
    "APPLICATION/JSON",
    "",
    ";",
    "application/json;charset=latin-1",
]
content_types = st.one_of(
    st.none(), st.sampled_from(CONTENT_TYPES), st.text(st.characters(codec="latin-1"), max_size=30)
)

# Header values must survive HTTP: latin-1, no CR/LF (API Gateway would refuse the request before the handler).
header_values = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80)
header_names = st.one_of(
    st.sampled_from([
        "content-type", "content-encoding", "authorization", "idempotency-key", "x-twilio-signature",
        "x-hub-signature-256", "host", "x-forwarded-proto", "x-forwarded-for", "cookie", "accept",
        "user-agent", "transfer-encoding", "x-amzn-trace-id", "content-length", "origin",
    ]),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-0123456789_"), min_size=1, max_size=20),
)
random_headers = st.lists(st.tuples(header_names, header_values), max_size=4)


def _sizes_body(size: int) -> bytes:
    return (b"A" * 1021 + b"==\n") * (size // 1024) + b"x" * (size % 1024)


@st.composite
def raw_bodies(draw: st.DrawFn, *, huge: int) -> bytes | None:
    """Any body bytes: nothing, random bytes, JSON, forms, invalid UTF-8, and bodies around ``huge`` bytes."""
    kind = draw(st.sampled_from(["none", "empty", "binary", "binary", "json", "json", "form", "form", "text",
                                 "utf8-invalid", "huge"]))
    if kind == "none":
        return None
    if kind == "empty":
        return b""
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return dump_json(draw(json_values))
    if kind == "form":
        pairs = draw(st.lists(st.tuples(texts, texts), max_size=6))
        return urlencode(pairs).encode()
    if kind == "text":
        return draw(st.text(max_size=100)).encode("utf-8")
    if kind == "utf8-invalid":
        return draw(st.sampled_from([b"\xff\xfe", b"a=%ED%A0%80", b'{"a":"\xc3"}', b"\xc0\xaf=1", b"%ZZ=%%"]))
    return _sizes_body(draw(st.sampled_from([huge - 1, huge, huge + 1, huge * 4 // 3 + 8])))


def mutate_encoding(event: dict[str, Any], how: str, data: st.DataObject | None = None) -> dict[str, Any]:
    """What API Gateway never does but a handler must survive: a wrong ``isBase64Encoded``, no body..."""
    if how == "as-is":
        return event
    if how == "flag-true":  # the text body is now "base64": usually invalid, sometimes decodes to garbage
        event["isBase64Encoded"] = True
    elif how == "flag-false":
        event["isBase64Encoded"] = False
    elif how == "invalid-base64":
        not_base64 = st.sampled_from(["%%%", "abc", "=", "YQ", "YWJj\n", "ü", "YWJ=j", "////"])
        event["isBase64Encoded"], event["body"] = True, data.draw(not_base64) if data else "%%%"
    elif how == "binary-base64":  # valid base64 of bytes that are not UTF-8 (nor JSON, nor a form)
        raw = data.draw(st.binary(min_size=1, max_size=64)) if data else b"\xff"
        event["isBase64Encoded"], event["body"] = True, base64.b64encode(raw).decode()
    elif how == "no-body":
        event.pop("body", None)
    elif how == "null-body":
        event["body"] = None
    elif how == "empty-body":
        event["body"] = ""
    return event


ENCODING_MUTATIONS = ["as-is", "as-is", "as-is", "flag-true", "flag-false", "invalid-base64", "binary-base64",
                      "no-body", "null-body", "empty-body"]
encoding_mutations = st.sampled_from(ENCODING_MUTATIONS)

# Query strings: random pairs, percent-garbage, repeated names.
query_strings = st.one_of(
    st.just(""),
    st.lists(st.tuples(texts, texts), max_size=4).map(urlencode),
    st.text(st.characters(codec="ascii", exclude_characters="#"), max_size=40),
)


# Claims as the JWT authorizer hands them over (flattened by the builder) or unflattened (a list, a number).
GROUP_FORMS: list[Any] = [
    ["admin"], ["ops"], ["admin", "ops"], [], "[admin ops]", "[ops]", "admin", "[admin]", '["admin"]', "",
    "[]", "[ admin ]", "ops,admin", None, 7, True,
]


@st.composite
def claim_sets(draw: st.DrawFn, tenants: Sequence[str] = (TENANT,)) -> tuple[dict[str, Any] | None, bool]:
    """``(claims, raw)``: ``claims`` None means no authorizer context at all; ``raw`` puts them in the event
    unflattened (lists and numbers as JSON values)."""
    kind = draw(st.sampled_from(["valid", "valid", "valid", "none", "no-tenant", "odd-tenant", "odd-groups",
                                 "extra"]))
    if kind == "none":
        return None, False
    tenant: Any = draw(st.sampled_from(list(tenants)))
    groups: Any = draw(st.sampled_from(GROUP_FORMS))
    claims = id_token_claims(tenant, groups=[])
    claims.pop("cognito:groups", None)
    if groups is not None:
        claims["cognito:groups"] = groups
    if kind == "no-tenant":
        del claims["custom:tenant_id"]
    elif kind == "odd-tenant":
        claims["custom:tenant_id"] = draw(st.one_of(texts, st.integers(), st.just(" "), st.just(None)))
    elif kind == "extra":
        claims.update(draw(st.dictionaries(texts, json_scalars.filter(lambda v: not isinstance(v, str)) | texts,
                                           max_size=3)))
    return claims, draw(st.booleans())


def with_claims(event: dict[str, Any], claims: Mapping[str, Any] | None, raw: bool) -> dict[str, Any]:
    """Replace the authorizer context: none, flattened (as the builder did) or the raw claim values."""
    context = event["requestContext"]
    if claims is None:
        context.pop("authorizer", None)
    elif raw:
        context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    return event


def path_ids(real: Sequence[str]) -> st.SearchStrategy[str]:
    """Path parameter values: real ids, random text (quoted into the path), long ones, dots."""
    return st.one_of(
        st.sampled_from(list(real)) if real else st.nothing(),
        st.sampled_from(list(real)) if real else st.nothing(),
        st.text(min_size=1, max_size=70),
        st.sampled_from([".", "..", "%", "cv_", "a" * 65, "a" * 64, "ch_" + "0" * 24, " ", "null", "\u0000"]),
    )


def quoted(segment: str) -> str:
    return quote(segment, safe="")


# ------------------------------------------------------------------------------------------ JSON mutation
@st.composite
def mutated(draw: st.DrawFn, value: Any, *, max_mutations: int = 3, huge: bool = True) -> Any:
    """``value`` with a few random structural mutations: a node replaced by any JSON value (sometimes a huge
    string), a key deleted or added, a list item duplicated or dropped, a type changed."""
    result = json.loads(json.dumps(value))
    for _ in range(draw(st.integers(min_value=0, max_value=max_mutations))):
        result = _mutate_once(draw, result, huge=huge)
    return result


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _mutate_once(draw: st.DrawFn, root: Any, *, huge: bool) -> Any:
    paths = list(_paths(root))
    path = draw(st.sampled_from(paths))
    node = _get(root, path)
    ops = ["replace", "retype"]
    if isinstance(node, dict):
        ops += ["delete-key", "add-key"] if node else ["add-key"]
    if isinstance(node, list):
        ops += ["duplicate", "drop"] if node else []
    if isinstance(node, str) and huge:
        ops.append("huge")
    op = draw(st.sampled_from(ops))
    if op == "replace":
        new: Any = draw(json_values)
    elif op == "retype":
        new = draw(st.sampled_from([None, True, 0, -1, 1.5, "", "x", [], {}, [node], {"": node}, str(node)[:50]]))
    elif op == "huge":
        new = node * 2 if node else "x"
        new = (new * (draw(st.sampled_from([70_000, 420_000])) // max(1, len(new)) + 1))[: 420_000]
    elif op == "delete-key":
        key = draw(st.sampled_from(sorted(node, key=str)))
        new = {k: v for k, v in node.items() if k != key}
    elif op == "add-key":
        new = {**node, draw(texts): draw(json_values)}
    elif op == "duplicate":
        new = [*node, *node]
    else:  # drop
        index = draw(st.integers(min_value=0, max_value=len(node) - 1))
        new = node[:index] + node[index + 1:]
    if not path:
        return new
    parent = _get(root, path[:-1])
    parent[path[-1]] = new
    return root


# ------------------------------------------------------------------------------------------ per test
@contextlib.contextmanager
def fuzzing(stack: FuzzStack, request: pytest.FixtureRequest) -> Iterator[FuzzStack]:
    """A fresh tally for one test; its figures go to the test's report (``user_properties``), from which
    tests/fuzz/conftest.py prints the table of cases per handler."""
    stack.tally = Tally()
    started = time.monotonic()
    yield stack
    figures = {"seconds": round(time.monotonic() - started, 1), "handlers": stack.tally.summary()}
    request.node.user_properties.append(("fuzz", figures))


# ------------------------------------------------------------------------------------------ /v1 requests
@dataclass
class ApiRequest:
    """One /v1 request as drawn (printed by hypothesis when a case fails)."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    raw_claims: bool = False
    encoding: str = "as-is"

    def event(self, stack: FuzzStack) -> dict[str, Any]:
        headers = [("content-type", self.content_type)] if self.content_type is not None else []
        event = stack.event(self.method, self.path, body=self.body, query=stack.resolve(self.query),
                            headers=[*headers, *self.headers], claims=self.claims)
        return mutate_encoding(with_claims(event, self.claims, self.raw_claims), self.encoding)


API_CONTENT_TYPES = ["application/json"] * 6 + CONTENT_TYPES


@st.composite
def api_requests(
    draw: st.DrawFn,
    method: str,
    paths: st.SearchStrategy[str],
    *,
    bodies: st.SearchStrategy[Any] | None = None,
    queries: st.SearchStrategy[str] = query_strings,
    headers: st.SearchStrategy[list[tuple[str, str]]] = random_headers,
    tenants: Sequence[str] = (TENANT,),
) -> ApiRequest:
    """A request to ``method`` + one of ``paths``: mostly a JSON body drawn from ``bodies``, sometimes any bytes
    under any content type; claims in every form; sometimes an event API Gateway would never send."""
    # Two cases in three are well-formed around the body (JSON, a tenant's claims, an event as API Gateway sends
    # it), so that most of them get past the edge into the service; the rest are chaos.
    chaos = draw(st.integers(min_value=0, max_value=2)) == 0
    body: bytes | None = None
    if bodies is not None:
        kind = draw(st.sampled_from(["json"] * 6 + ["raw", "none"])) if chaos else "json"
        if kind == "json":
            body = dump_json(draw(bodies))
        elif kind == "raw":
            body = draw(raw_bodies(huge=256 * 1024))
    if chaos:
        claims, raw = draw(claim_sets(tenants))
    else:
        claims, raw = id_token_claims(draw(st.sampled_from(list(tenants)))), False
    return ApiRequest(
        method=method,
        path=draw(paths),
        body=body,
        content_type=draw(st.one_of(st.sampled_from(API_CONTENT_TYPES), content_types)) if chaos
        else "application/json",
        query=draw(queries),
        headers=draw(headers),
        claims=claims,
        raw_claims=raw,
        encoding=draw(st.sampled_from(ENCODING_MUTATIONS)) if chaos else "as-is",
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cursors(partitions: Mapping[str, str], real: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Cursors: real ones, garbage, base64 of any JSON, and near-valid keys (the caller's partition with
    missing, extra or mistyped attributes) that only DynamoDB itself could refuse."""
    attr_values = st.one_of(
        st.fixed_dictionaries({"S": st.one_of(texts, st.sampled_from(list(partitions.values())))}),
        st.fixed_dictionaries({"N": st.sampled_from(["1", "x", ""])}),
        st.fixed_dictionaries({"S": st.integers()}),
        json_values,
    )
    near_valid = st.builds(
        lambda extra, keep: {**{k: {"S": v} for k, v in partitions.items() if k in keep}, **extra},
        st.dictionaries(st.sampled_from(["pk", "sk", "gsi1pk", "gsi1sk", "x", ""]), attr_values, max_size=3),
        st.sets(st.sampled_from(sorted(partitions))),
    )
    return st.one_of(
        st.sampled_from(list(real)) if real else st.nothing(),
        st.sampled_from(list(real)) if real else st.nothing(),
        texts,
        st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/"), max_size=60),
        json_values.map(lambda v: b64url(dump_json(v))),
        near_valid.map(lambda v: b64url(json.dumps(v).encode())),
        st.sampled_from([b64url(b"[" * 3000), b64url(b'{"a":' * 1000), b64url(b"\xff\xfe"), "=" * 10, "a" * 2048,
                         "a" * 2049]),
    )


def limits() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=1, max_value=100).map(str),
        st.integers(min_value=1, max_value=100).map(str),
        st.integers(min_value=-5, max_value=105).map(str),
        st.sampled_from(["", "1.5", "1e2", "0x10", "٣", " 5", "5 ", "+5", "99999999999999999999999", "NaN", "none"]),
        texts,
    )


@st.composite
def list_queries(draw: st.DrawFn, cursor: st.SearchStrategy[str]) -> str:
    """``limit`` and ``cursor`` (each maybe absent, repeated or garbage) plus random other parameters."""
    pairs: list[tuple[str, str]] = []
    for name, values in (("limit", limits()), ("cursor", cursor)):
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 1, 1, 1, 1, 2]))):
            pairs.append((name, draw(values)))
    pairs += draw(st.lists(st.tuples(texts, texts), max_size=2))
    return urlencode(draw(st.permutations(pairs)))


def fuzz_settings(max_examples: int) -> Any:
    """Every fuzz test: no deadline (moto is slow, and slow is not what we look for); fixtures reused across
    examples on purpose (module-scoped moto)."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
