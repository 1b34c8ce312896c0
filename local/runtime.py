"""Run the template's Lambda handlers in this process, the way the Lambda runtime would load them.

Each function's handler module is imported with importlib under a unique module name, with the function's
layers (``/opt/python`` in Lambda) and its code directory (the task root) on ``sys.path``. An *instance* is one
such import; like a Lambda execution environment it handles one event at a time. A function gets up to
``max_concurrency`` instances (default 1: invocations of one function are serialized, different functions run
in parallel). See docs/local-stack.md for why threads in one process rather than a worker per function.

While a function runs (its cold start and its handler), ``CALLER`` names it: the AWS calls made then are the
ones its IAM role must allow on AWS (``local.aws_actions`` records them for tests/iam_coverage.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from local.provision import Resources
from local.template import FunctionSpec

log = logging.getLogger("local.runtime")

Handler = Callable[[Any, Any], Any]

# Imports mutate sys.path, sys.modules and os.environ: one at a time.
_import_lock = threading.RLock()
_instance_counter = iter(range(1, 1_000_000))


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: str  # the Python runtime hands it over as a string
    invoked_function_arn: str
    timeout_seconds: float = 3.0
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            day = time.strftime("%Y/%m/%d", time.gmtime())
            self.log_stream_name = f"{day}/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def fake_context(
    function_name: str = "local-function",
    *,
    memory_mb: int = 128,
    timeout_seconds: float = 3.0,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> LambdaContext:
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=str(memory_mb),
        invoked_function_arn=f"arn:aws:lambda:{region}:{account_id}:function:{function_name}",
        timeout_seconds=timeout_seconds,
    )


# ----------------------------------------------------------------------------------------------- caller
@dataclass(frozen=True)
class Caller:
    """Whose IAM role an AWS call is made with: a function of a provisioned template (``resources``: its stack,
    to tell which of the template's resources a call names)."""

    function_id: str
    resources: Resources | None = None


CALLER: ContextVar[Caller | None] = ContextVar("local_runtime_caller", default=None)


@contextlib.contextmanager
def acting_as(function_id: str, resources: Resources | None) -> Iterator[None]:
    """AWS calls in this block are made with ``function_id``'s role: its invocations (``FunctionPool``), and what
    Lambda does with the role on its behalf (the stream event source's OnFailure send, ``local.poller``)."""
    token = CALLER.set(Caller(function_id, resources))
    try:
        yield
    finally:
        CALLER.reset(token)


# ----------------------------------------------------------------------------------------------- loading
def load_handler(
    spec: FunctionSpec, *, env: Mapping[str, str] | None = None, module_name: str | None = None
) -> Handler:
    """Import ``spec``'s handler module afresh (a cold start) and return its handler function.

    ``env`` is applied to ``os.environ`` only while the module executes: module-level code (a Powertools
    ``Logger()`` reading POWERTOOLS_SERVICE_NAME...) sees the function's own variables.
    """
    module_path, _, attr = spec.handler.rpartition(".")
    file = _module_file(spec.code_dir, module_path)
    name = module_name or f"_local_fn_{spec.logical_id}_{next(_instance_counter)}"
    with _import_lock, _environment(env or {}), _task_root(spec.code_dir):
        _add_layers(spec.layer_dirs)
        before = set(sys.modules)
        module = _exec_module(name, file)
        _forget_task_root_modules(before, spec.code_dir)
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise AttributeError(f"{file} has no callable {attr!r} (Handler: {spec.handler})")
    return cast(Handler, handler)


def _module_file(code_dir: Path, module_path: str) -> Path:
    base = code_dir.joinpath(*module_path.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"handler module {module_path!r} not found in {code_dir}")


def _exec_module(name: str, file: Path) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # while it executes: dataclasses and pydantic look their module up by name
    try:
        module_spec.loader.exec_module(module)
    finally:
        # Then forgotten: the handler's globals keep the module alive exactly as long as the warm instance is,
        # instead of every cold start's module (its services, clients, botocore sessions) living in sys.modules
        # for the rest of the process (27k objects a cold start; the test workers spent a third of their time in
        # the garbage collector walking them).
        sys.modules.pop(name, None)
    return module


def _add_layers(layer_dirs: tuple[Path, ...]) -> None:
    # Layers stay on sys.path: handlers import layer modules lazily too. All functions share one copy.
    for directory in reversed(layer_dirs):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))


@contextlib.contextmanager
def _task_root(code_dir: Path) -> Iterator[None]:
    # The task root is on sys.path only while its handler imports, so that helper modules of two functions
    # with the same name (utils.py) cannot shadow each other.
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(code_dir))


def _forget_task_root_modules(before: set[str], code_dir: Path) -> None:
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file and Path(file).resolve().is_relative_to(code_dir) and not name.startswith("_local_fn_"):
            del sys.modules[name]  # the handler module keeps its reference


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ----------------------------------------------------------------------------------------------- invoking
class FunctionPool:
    """Warm instances of one function; an invocation takes an idle one or cold-starts a new one."""

    def __init__(
        self,
        spec: FunctionSpec,
        context_factory: Callable[[], LambdaContext],
        env: Mapping[str, str],
        max_concurrency: int = 1,
        resources: Resources | None = None,
    ) -> None:
        self.spec = spec
        self.resources = resources
        self._context_factory = context_factory
        self._env = dict(env)
        self._idle: list[Handler] = []
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._lock = threading.Lock()

    def invoke(self, event: Any) -> Any:
        # The one place a handler runs (the gateway, the poller, tests and ``make invoke`` all come here).
        with self._slots, acting_as(self.spec.logical_id, self.resources):
            handler = self._take()
            try:
                return self._run(handler, event)
            finally:
                with self._lock:
                    self._idle.append(handler)

    def warm(self) -> None:
        with self._slots, acting_as(self.spec.logical_id, self.resources):
            handler = self._take()
            with self._lock:
                self._idle.append(handler)

    def _take(self) -> Handler:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        started = time.monotonic()
        handler = load_handler(self.spec, env=self._env)
        log.info("cold start %s (%.0f ms)", self.spec.logical_id, (time.monotonic() - started) * 1000)
        return handler

    def _run(self, handler: Handler, event: Any) -> Any:
        context = self._context_factory()
        started = time.monotonic()
        try:
            return handler(event, context)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > context.timeout_seconds:
                # A thread cannot be killed; Lambda would have stopped this invocation with a timeout error.
                log.warning(
                    "%s ran %.1f s, over its Timeout of %s s: Lambda would have failed it",
                    self.spec.logical_id,
                    elapsed,
                    context.timeout_seconds,
                )


class FunctionRuntime:
    """All functions of a provisioned template, invoked in-process by logical id."""

    def __init__(self, resources: Resources, *, max_concurrency: int = 1) -> None:
        self.resources = resources
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()
        self._max_concurrency = max_concurrency
        # The caller has put these in os.environ (they are the same for every function).
        self._shared_env = resources.globals_env()

    def function_ids(self) -> list[str]:
        return [f.logical_id for f in self.resources.template.functions() if self.resources.enabled(f.condition)]

    def invoke(self, function_id: str, event: Any) -> Any:
        return self.pool(function_id).invoke(event)

    def pool(self, function_id: str) -> FunctionPool:
        with self._lock:
            if function_id not in self._pools:
                self._pools[function_id] = self._new_pool(function_id)
            return self._pools[function_id]

    def _new_pool(self, function_id: str) -> FunctionPool:
        spec = self.resources.template.function(function_id)
        env = self.resources.function_env(function_id)
        # os.environ already holds what all functions share; only the rest is applied around the import.
        own_env = {k: v for k, v in env.items() if self._shared_env.get(k) != v}
        return FunctionPool(spec, lambda: self.context_for(spec), own_env, self._max_concurrency, self.resources)

    def context_for(self, spec: FunctionSpec) -> LambdaContext:
        res = self.resources
        function = res.resource(spec.logical_id)
        log_group = res.resolver.resolve_str(spec.log_group) if spec.log_group else ""
        return LambdaContext(
            function_name=function.ref,
            memory_limit_in_mb=res.resolver.resolve_str(spec.memory_size),
            invoked_function_arn=function.attributes["Arn"],
            timeout_seconds=float(res.resolver.resolve_str(spec.timeout)),
            log_group_name=log_group,
        )
