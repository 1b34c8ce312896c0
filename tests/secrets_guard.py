"""Secrets guard: every test fails when a test secret shows up in anything the gateway puts out (DESIGN §5).

Loaded for the whole suite by tests/conftest.py (``pytest_plugins``); each process (each xdist worker) checks
its own captures, after every test phase, and turns the phase into a failure naming the secret and where it
was found.

**What is a test secret.** Channel credentials (Twilio auth tokens, Meta access tokens and app secrets) as the
tests write them: string literals assigned or passed under a secret-like name (``auth_token=``,
``"access_token": ...``, ``APP_SECRET = ...``, ``SECRETS = (...)``), read from the test sources with ``ast``
(tests/, local/tests/, local/testing.py and every collected test module), including the constant parts of
secrets built at run time (``"twilio-secret-" + token_hex(8)`` → ``twilio-secret-``). Verify tokens are not
secrets (the API shows them so that they can be pasted into Meta's dashboard). **Any JWT** is a secret
wherever it appears, registered or not. ``register_secret()`` adds others.

**What is an output.** Requests may carry secrets (creating a channel, an ``Authorization`` header); only what
comes out counts:
- every log record of the process, with its arguments, extra fields and traceback (``logging.Logger.handle``);
- what the test phase wrote to stdout/stderr (Powertools' JSON logs, EMF metrics) and pytest's captured log;
- responses of the template's functions invoked in-process (``local.runtime.FunctionPool``, as the
  integration tests and the in-process gateway do);
- events put on EventBridge by code in this process (botocore ``PutEvents``);
- for every local stack ``local.testing.start_stack`` brings up (e2e): its stdout/stderr file, the response
  of every HTTP request sent to it (``/_local/*`` excepted: ``/_local/token`` issues JWTs by design), and the
  events on its buses (a rule forwards them to a queue of the stack's moto, read after each phase).

A test that must output a secret (the guard's own tests) says so with ``@pytest.mark.secrets_allowed(reason)``.

Limits: output a test takes with ``capsys``/``capfd`` is that test's, not scanned (log records still are);
``-s`` (no capture) leaves only the log records, responses and events; a secret generated at run time with
no constant part (``token_hex(16)`` alone) is unknown unless registered; values shorter than 8 characters
(``"t"``, ``"EAAG"``) cannot be told from ordinary text and are not tracked.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import functools
import json
import logging
import re
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "tests", ROOT / "local" / "tests", ROOT / "local" / "testing.py")
FUNCTIONS_DIR = ROOT / "functions"

MIN_SECRET_LENGTH = 8
MIN_FRAGMENT_LENGTH = 9  # a constant part of a generated secret: long enough not to occur by chance
SECRET_NAME = re.compile(r"auth_?token|access_?token|app_?secret|secret|token|password|api_?key", re.IGNORECASE)
NOT_SECRET_NAME = re.compile(r"verify|idempoten|cursor|next|page|hint|token_use|jwks|fields", re.IGNORECASE)
NOT_A_SECRET = re.compile(r"[a-z_]+|.*(•|\*\*\*|redacted|\s\S+\s).*", re.IGNORECASE)  # field names, hints, prose
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_KINDS = (
    ("log record", "log records"),
    ("captured", "captured outputs"),
    ("response of", "handler responses"),
    ("HTTP response", "HTTP responses"),
    ("output of", "stack output chunks"),
    ("an event", "events"),
)
FLUSH_BYTES = 4 << 20  # scan early rather than keep more than this of a phase's output in memory
EVENT_RULE = "secrets-guard"
EVENT_SOURCE = "whatsapp.gateway"  # gateway.events.SOURCE: everything the gateway publishes
LOCAL_PATHS = "/_local/"


# -------------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Secret:
    value: str
    origin: str  # "tests/integration/test_channels_api.py:17 auth_token"
    fragment: bool = False  # the constant part of a secret built at run time

    @functools.cached_property
    def needles(self) -> tuple[str, ...]:
        """The secret as it would read in plain text, in JSON or a Python repr (a traceback's message), those
        escaped once more (a traceback in a JSON log line), and in a URL or form."""
        escaped = [json.dumps(self.value)[1:-1], json.dumps(self.value, ensure_ascii=False)[1:-1],
                   repr(self.value)[1:-1]]
        forms = [self.value, *escaped, *(json.dumps(e)[1:-1] for e in escaped)]
        forms += [quote(self.value, safe=""), quote_plus(self.value)]
        return tuple(dict.fromkeys(forms))

    def masked(self) -> str:
        return self.value[:4] + "…" if not self.fragment else self.value + "…"


@dataclass(frozen=True)
class Leak:
    secret: str  # what leaked, masked, and where the secret comes from
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.where}: {self.excerpt}"


class SecretRegistry:
    def __init__(self) -> None:
        self._secrets: dict[str, Secret] = {}
        self._lock = threading.Lock()
        self._harvested: set[Path] = set()
        self._public: set[str] = set()

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, value: str) -> bool:
        return value in self._secrets

    def add(self, value: str, origin: str, *, fragment: bool = False) -> bool:
        """Register a secret; False (ignored) for values too short or shaped like a field name or a hint, and
        for values some test also uses as a verify token (shown by the API by design)."""
        if not isinstance(value, str) or len(value) < (MIN_FRAGMENT_LENGTH if fragment else MIN_SECRET_LENGTH):
            return False
        if NOT_A_SECRET.fullmatch(value) or value in self._public:
            return False
        with self._lock:
            if value not in self._secrets or (self._secrets[value].fragment and not fragment):
                self._secrets[value] = Secret(value, origin, fragment)
        return True

    def harvest(self, paths: Iterable[Path]) -> None:
        for path in paths:
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for file in files:
                if file in self._harvested or file.suffix != ".py" or not file.is_file():
                    continue
                self._harvested.add(file)
                found = harvest_source(file)
                for value, _, _ in found.public:
                    self._public.add(value)
                    with self._lock:
                        self._secrets.pop(value, None)
                for value, fragment, origin in found.secrets:
                    self.add(value, origin, fragment=fragment)

    def secrets(self) -> list[Secret]:
        with self._lock:
            return list(self._secrets.values())

    def scan(self, text: str, where: str) -> list[Leak]:
        leaks = []
        for secret in self.secrets():
            for needle in secret.needles:
                index = text.find(needle)
                if index >= 0:
                    leaks.append(Leak(f"{secret.masked()!r} ({secret.origin})", where, _excerpt(text, index, needle)))
                    break
        match = JWT.search(text)
        if match:
            leaks.append(Leak("a JWT", where, _excerpt(text, match.start(), match.group())))
        return leaks


def _excerpt(text: str, index: int, needle: str, width: int = 60) -> str:
    before = text[max(0, index - width) : index]
    after = text[index + len(needle) : index + len(needle) + width]
    return " ".join(f"{before}«SECRET»{after}".split())


# -------------------------------------------------------------------------------------------------- harvest
@dataclass
class Harvest:
    """(value, is_fragment, origin) of the strings a test source writes under a secret-like name, and of those
    under a name that says they are not secret (``verify_token``...): a value in both is not tracked."""

    secrets: list[tuple[str, bool, str]] = field(default_factory=list)
    public: list[tuple[str, bool, str]] = field(default_factory=list)


def harvest_source(file: Path) -> Harvest:
    found = Harvest()
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return found
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            assigned.setdefault(node.target.id, []).append(node.value)
    try:
        shown = file.relative_to(ROOT)
    except ValueError:
        shown = file
    for node in ast.walk(tree):
        for name, value in _named_values(node):
            if not name or not SECRET_NAME.search(name):
                continue
            into = found.public if NOT_SECRET_NAME.search(name) else found.secrets
            for text, whole in _strings(value, assigned):
                into.append((text, not whole, f"{shown}:{getattr(value, 'lineno', '?')} {name}"))
    return found


def _named_values(node: ast.AST) -> list[tuple[str | None, ast.expr | None]]:
    if isinstance(node, ast.Assign):
        return [(_name(target), node.value) for target in node.targets]
    if isinstance(node, ast.AnnAssign):
        return [(_name(node.target), node.value)]
    if isinstance(node, ast.Call):
        return [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
    if isinstance(node, ast.Dict):
        return [(_name(key), value) for key, value in zip(node.keys, node.values, strict=True) if key is not None]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        args = node.args
        positional = args.posonlyargs + args.args
        pairs: list[tuple[str | None, ast.expr | None]] = [
            (arg.arg, default)
            for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
        ]
        return pairs + [(arg.arg, d) for arg, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
    return []


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _strings(node: ast.AST | None, assigned: dict[str, list[ast.expr]], depth: int = 0) -> list[tuple[str, bool]]:
    """(text, is the whole value) for the strings an expression may evaluate to (constants, names assigned a
    constant in the module, the constant parts of f-strings and concatenations)."""
    if node is None or depth > 4:
        return []
    if isinstance(node, ast.Constant):
        return [(node.value, True)] if isinstance(node.value, str) else []
    if isinstance(node, ast.JoinedStr):
        return [(v.value, False) for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = _strings(node.left, assigned, depth + 1) + _strings(node.right, assigned, depth + 1)
        return [(text, False) for text, _ in parts]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for element in node.elts for s in _strings(element, assigned, depth + 1)]
    if isinstance(node, ast.IfExp):
        return _strings(node.body, assigned, depth + 1) + _strings(node.orelse, assigned, depth + 1)
    if isinstance(node, ast.Name):
        return [s for value in assigned.get(node.id, []) for s in _strings(value, assigned, depth + 1)]
    return []


# -------------------------------------------------------------------------------------------------- captures
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def render_record(record: logging.LogRecord) -> str:
    """Everything a handler could print of a record: message, arguments, extra fields, traceback."""
    try:
        parts = [record.getMessage()]
    except Exception:  # a broken format string still shows its pieces
        parts = [str(record.msg), repr(record.args)]
    parts += [f"{key}={value!s}" for key, value in vars(record).items() if key not in _STANDARD_RECORD_FIELDS]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def _to_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


@dataclass
class _Stack:
    """A local stack started by local.testing.start_stack: its output file, URL and event tap."""

    label: str
    base_url: str
    log_path: Path
    aws_endpoint: str | None
    buses: list[str]
    offset: int = 0
    queue_url: str | None = None
    alive: bool = True
    clients: dict[str, Any] = field(default_factory=dict)


class SecretsGuard:
    """The plugin object: one per pytest process (each xdist worker has its own)."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        self.registry = registry or SecretRegistry()
        self._lock = threading.Lock()
        self._outputs: list[tuple[str, str]] = []
        self._size = 0
        self._pending: list[Leak] = []
        self._stacks: list[_Stack] = []
        self._streamed: list[tuple[str, Any]] = []  # (where, requests.Response) read with stream=True
        self._undo: list[Callable[[], None]] = []
        self.counts: Counter[str] = Counter()  # outputs scanned, by kind (reported at the end of the run)
        self.failed_phases = 0
        self.workers: list[dict[str, Any]] = []  # under xdist, on the controller: what each worker scanned

    # ------------------------------------------------------------------------------------------ intake
    def output(self, where: str, value: Any) -> None:
        """Something the gateway put out; scanned at the end of the test phase."""
        text = _to_text(value)
        kind = next((k for prefix, k in _KINDS if where.startswith(prefix)), "other")
        with self._lock:
            self.counts[kind] += 1
            self._outputs.append((where, text))
            self._size += len(text)
            flush = self._size > FLUSH_BYTES
        if flush:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            outputs, self._outputs, self._size = self._outputs, [], 0
        leaks = [leak for where, text in outputs for leak in self.registry.scan(text, where)]
        with self._lock:
            self._pending += leaks

    def take_leaks(self) -> list[Leak]:
        self._poll_stacks()
        with self._lock:
            streamed, self._streamed = self._streamed, []
        for where, response in streamed:
            content = getattr(response, "_content", None)  # what the caller read of it, if anything
            if isinstance(content, bytes):
                self.output(where, content)
        self._flush()
        with self._lock:
            leaks, self._pending = self._pending, []
        return leaks

    # ------------------------------------------------------------------------------------------ patches
    def install(self) -> None:
        self._patch_logging()
        self._patch_function_runtime()
        self._patch_botocore()
        self._patch_requests()
        self._observe_stacks()

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)
        setattr(owner, name, make(original))
        self._undo.append(lambda: setattr(owner, name, original))

    def _patch_logging(self) -> None:
        guard = self

        def make(original: Callable[[logging.Logger, logging.LogRecord], Any]) -> Any:
            def handle(logger: logging.Logger, record: logging.LogRecord) -> Any:
                try:
                    where = f"log record {record.name} {record.levelname} ({record.pathname}:{record.lineno})"
                    guard.output(where, render_record(record))
                except Exception:  # never break the code under test
                    pass
                return original(logger, record)

            return handle

        self._patch(logging.Logger, "handle", make)

    def _patch_function_runtime(self) -> None:
        try:
            from local.runtime import FunctionPool
        except ImportError:  # pragma: no cover - the guard outside this repository
            return
        guard = self

        def make(original: Callable[..., Any]) -> Any:
            def _run(pool: Any, handler: Any, event: Any) -> Any:
                result = original(pool, handler, event)
                code_dir = Path(pool.spec.code_dir).resolve()
                if code_dir.is_relative_to(FUNCTIONS_DIR):  # the gateway's functions, not a test's stand-ins
                    where = f"response of {pool.spec.logical_id}"
                    guard.output(where, result)
                    if isinstance(result, dict) and result.get("isBase64Encoded") and result.get("body"):
                        with contextlib.suppress(ValueError):
                            guard.output(where + " (body decoded)", base64.b64decode(result["body"]))
                return result

            return _run

        self._patch(FunctionPool, "_run", make)

    def _patch_botocore(self) -> None:
        try:
            from botocore.client import BaseClient
        except ImportError:  # pragma: no cover
            return
        guard = self

        def make(original: Callable[..., Any]) -> Any:
            def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
                if operation_name == "PutEvents":
                    guard.output("an event put on EventBridge", api_params)
                return original(client, operation_name, api_params)

            return _make_api_call

        self._patch(BaseClient, "_make_api_call", make)

    def _patch_requests(self) -> None:
        try:
            import requests
        except ImportError:  # pragma: no cover
            return
        guard = self

        def make(original: Callable[..., Any]) -> Any:
            def send(session: Any, request: Any, **kwargs: Any) -> Any:
                response = original(session, request, **kwargs)
                stack = guard._stack_for(str(request.url))
                path = urlsplit(str(request.url)).path
                if stack is not None and not path.startswith(LOCAL_PATHS):
                    where = f"HTTP response of {stack.label}: {request.method} {path} → {response.status_code}"
                    if kwargs.get("stream"):  # read by the caller later (schemathesis does): scanned at phase end
                        with guard._lock:
                            guard._streamed.append((where, response))
                    else:
                        guard.output(where, response.content)
                return response

            return send

        self._patch(requests.Session, "send", make)

    # ------------------------------------------------------------------------------------------ stacks
    def _observe_stacks(self) -> None:
        try:
            from local import testing
        except ImportError:  # pragma: no cover
            return
        observers = testing.STACK_OBSERVERS
        observers.append(self._on_stack)
        self._undo.append(lambda: observers.remove(self._on_stack) if self._on_stack in observers else None)

    def _on_stack(self, what: str, stack: Any) -> None:
        try:
            if what == "started":
                self._watch(stack)
            elif what == "stopping":
                for watched in self._stacks:
                    if watched.base_url == stack.base_url and watched.alive:
                        self._read_stack(watched)
                        watched.alive = False
        except Exception as error:  # an observer must not fail the stack
            self.output("secrets guard", f"could not watch {getattr(stack, 'base_url', stack)}: {error!r}")

    def _watch(self, stack: Any) -> None:
        state = stack.state or {}
        watched = _Stack(
            label=f"local stack {stack.base_url}",
            base_url=stack.base_url,
            log_path=Path(stack.log_path),
            aws_endpoint=state.get("aws_endpoint"),
            buses=list((state.get("event_buses") or {}).values()),
        )
        self._stacks.append(watched)
        if watched.aws_endpoint and watched.buses:
            self._tap_events(watched)

    def _client(self, stack: _Stack, service: str) -> Any:
        if service not in stack.clients:
            import boto3

            stack.clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=stack.aws_endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # moto's
            )
        return stack.clients[service]

    def _tap_events(self, stack: _Stack) -> None:
        """Forward every event on the stack's buses to a queue of its own moto, the way a subscriber sees them."""
        sqs, events = self._client(stack, "sqs"), self._client(stack, "events")
        stack.queue_url = sqs.create_queue(QueueName=EVENT_RULE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for bus in stack.buses:
            events.put_rule(Name=EVENT_RULE, EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
            events.put_targets(Rule=EVENT_RULE, EventBusName=bus, Targets=[{"Id": "guard", "Arn": arn}])

    def _stack_for(self, url: str) -> _Stack | None:
        return next((s for s in self._stacks if url.startswith(s.base_url + "/")), None)

    def _poll_stacks(self) -> None:
        for stack in list(self._stacks):
            if stack.alive:
                self._read_stack(stack)
            else:  # stopped (RunningStack.stop returned): the rest of its output, then forget it
                self._read_log(stack, final=True)
                self._stacks.remove(stack)

    def _read_stack(self, stack: _Stack) -> None:
        self._read_log(stack, final=False)
        if stack.queue_url:
            try:
                self._drain_events(stack)
            except Exception as error:  # moto gone, or mocked in-process right now: next phase
                self.output("secrets guard", f"could not read the events of {stack.label}: {type(error).__name__}")

    def _read_log(self, stack: _Stack, *, final: bool) -> None:
        try:
            with stack.log_path.open("rb") as handle:
                handle.seek(stack.offset)
                data = handle.read()
        except OSError:
            return
        if not final:  # a line still being written is read whole next time
            data = data[: data.rfind(b"\n") + 1]
        if data:
            stack.offset += len(data)
            self.output(f"output of {stack.label} ({stack.log_path.name})", data)

    def _drain_events(self, stack: _Stack) -> None:
        sqs = self._client(stack, "sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages") or []
            if not messages:
                return
            for message in messages:
                self.output(f"an event on the bus of {stack.label}", message.get("Body") or "")
            sqs.delete_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )

    # ------------------------------------------------------------------------------------------ pytest hooks
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.registry.harvest({Path(item.path) for item in items if str(item.path).endswith(".py")})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        for name, content in report.sections:
            if name.startswith("Captured") and name.endswith(f" {call.when}"):
                self.output(f"{name.lower()} of {item.nodeid}", content)
        leaks = self.take_leaks()
        if not leaks or item.get_closest_marker("secrets_allowed"):
            return report
        self.failed_phases += 1
        text = describe(leaks, f"{item.nodeid} ({call.when})")
        if report.failed:
            report.sections.append(("secrets guard", text))
        else:
            report.outcome = "failed"
            report.longrepr = text
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        leaks = self.take_leaks()  # what stacks wrote after the last test's teardown
        if leaks:
            self.failed_phases += 1
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(describe(leaks, "after the last test"), red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports for everyone
            workeroutput["secrets_guard"] = self.summary()

    def summary(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "secrets": len(self.registry), "failed": self.failed_phases}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(terminalreporter.config, "workeroutput"):
            return
        parts = self.workers or [self.summary()]
        counts: Counter[str] = Counter()
        for part in parts:
            counts.update(part["counts"])
        scanned = ", ".join(f"{counts[k]} {k}" for _, k in _KINDS if counts[k])
        failed = sum(part["failed"] for part in parts)
        secrets = max(part["secrets"] for part in parts)
        verdict = f"{failed} test phase(s) failed for a leak" if failed else "no leak"
        terminalreporter.write_line(
            f"secrets guard: scanned {scanned or 'nothing'} for {secrets} test secrets and any JWT: {verdict}"
        )


class _WorkerReports:
    """On the xdist controller: collects what each worker's guard scanned."""

    def __init__(self, guard: SecretsGuard) -> None:
        self.guard = guard

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        report = getattr(node, "workeroutput", {}).get("secrets_guard")
        if report:
            self.guard.workers.append(report)


def describe(leaks: list[Leak], during: str) -> str:
    lines = [f"secrets guard: {len(leaks)} test secret(s) in what the gateway put out during {during}:"]
    seen: set[tuple[str, str]] = set()
    for leak in leaks:
        if (leak.secret, leak.where) not in seen:
            seen.add((leak.secret, leak.where))
            lines.append(f"  - {leak}")
    return "\n".join(lines[:41]) + ("\n  …" if len(lines) > 41 else "")


# ------------------------------------------------------------------------------------------------ plugin API
_guard: SecretsGuard | None = None


def register_secret(value: str, origin: str = "registered by a test") -> bool:
    """Make a secret known to the guard of this process (for values the test sources do not spell out)."""
    if _guard is None:
        return False
    return _guard.registry.add(value, origin)


def pytest_configure(config: pytest.Config) -> None:
    global _guard
    config.addinivalue_line(
        "markers", "secrets_allowed(reason): the test outputs a test secret on purpose (the secrets guard's own tests)"
    )
    guard = SecretsGuard()
    guard.registry.harvest(SOURCES)
    guard.install()
    config.pluginmanager.register(guard, "secrets_guard_instance")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_WorkerReports(guard), "secrets_guard_workers")
    _guard = guard


def pytest_unconfigure(config: pytest.Config) -> None:
    global _guard
    guard = config.pluginmanager.get_plugin("secrets_guard_instance")
    if isinstance(guard, SecretsGuard):
        guard.uninstall()
        config.pluginmanager.unregister(guard)
    _guard = None
