"""Loading and invoking handlers in-process like the Lambda runtime: isolation of task roots, env at cold start,
one event at a time per instance."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.runtime import FunctionPool, LambdaContext, fake_context, load_handler
from local.template import Template

TWO_FUNCTIONS = """
Globals:
  Function:
    Handler: app.handler
    Environment: {Variables: {SHARED: "yes"}}
Resources:
  First:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: first/, Environment: {Variables: {WHO: first}}}
  Second:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: second/, Environment: {Variables: {WHO: second}}}
"""

APP = """
import os, threading, time
import helper

WHO_AT_IMPORT = os.environ.get("WHO")
active = 0
peak = 0
lock = threading.Lock()

def handler(event, context):
    global active, peak
    with lock:
        active += 1
        peak = max(peak, active)
    time.sleep(event.get("sleep", 0))
    with lock:
        active -= 1
    return {"helper": helper.NAME, "who": WHO_AT_IMPORT, "peak": peak, "module": __name__,
            "remaining": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def two_functions(write_template: Callable[..., Template]) -> Template:
    return write_template(
        TWO_FUNCTIONS,
        files={
            "first/app.py": APP,
            "first/helper.py": 'NAME = "first"',
            "second/app.py": APP,
            "second/helper.py": 'NAME = "second"',
        },
    )


def test_same_named_helper_modules_do_not_shadow_each_other(two_functions: Template) -> None:
    first = load_handler(two_functions.function("First"))
    second = load_handler(two_functions.function("Second"))

    assert first({}, fake_context())["helper"] == "first"
    assert second({}, fake_context())["helper"] == "second"


def test_function_env_is_visible_at_import_and_restored_after(two_functions: Template) -> None:
    handler = load_handler(two_functions.function("First"), env={"WHO": "first"})

    assert handler({}, fake_context())["who"] == "first"
    assert "WHO" not in os.environ


def test_each_load_is_a_fresh_module(two_functions: Template) -> None:
    a = load_handler(two_functions.function("First"))({}, fake_context())["module"]
    b = load_handler(two_functions.function("First"))({}, fake_context())["module"]

    assert a != b


def test_missing_handler_module_is_a_clear_error(write_template: Callable[..., Template]) -> None:
    template = write_template(TWO_FUNCTIONS)

    with pytest.raises(FileNotFoundError, match="app"):
        load_handler(template.function("First"))


def _invoke_concurrently(pool: FunctionPool, count: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(pool.invoke({"sleep": 0.05}))) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_function_handles_one_event_at_a_time_by_default(two_functions: Template) -> None:
    pool = FunctionPool(two_functions.function("First"), fake_context, env={})

    results = _invoke_concurrently(pool, 4)

    assert max(r["peak"] for r in results) == 1
    assert len({r["module"] for r in results}) == 1  # one warm instance


def test_more_concurrency_means_more_instances_each_one_event_at_a_time(two_functions: Template) -> None:
    pool = FunctionPool(two_functions.function("First"), fake_context, env={}, max_concurrency=3)

    results = _invoke_concurrently(pool, 6)

    assert max(r["peak"] for r in results) == 1  # per instance, as in a Lambda execution environment
    assert 1 < len({r["module"] for r in results}) <= 3


def test_context_counts_down_and_looks_like_the_python_runtimes() -> None:
    context: LambdaContext = fake_context("fn", memory_mb=256, timeout_seconds=2)

    first = context.get_remaining_time_in_millis()
    time.sleep(0.02)

    assert 1900 < first <= 2000
    assert context.get_remaining_time_in_millis() < first
    assert context.memory_limit_in_mb == "256"
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert context.aws_request_id and context.log_group_name == "/aws/lambda/fn"


def test_layers_go_on_sys_path(write_template: Callable[..., Template], tmp_path: Path) -> None:
    template = write_template(
        """
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: mylayer/}
    Metadata: {BuildMethod: python3.13}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn/, Handler: app.handler, Layers: [!Ref Layer]}
""",
        files={
            "mylayer/shared_thing_for_test.py": "VALUE = 42",
            "fn/app.py": "import shared_thing_for_test\ndef handler(e, c):\n    return shared_thing_for_test.VALUE",
        },
    )

    assert load_handler(template.function("Fn"))({}, fake_context()) == 42
