"""Every sample in events/ through ``make invoke`` (``python -m local.invoke``) against a fresh local stack, after
the README's "Try it" commands, in the order and with the answers events/README.md gives.

The stack is this module's own (a fresh ``make dev``, as a user starts it), not the session's shared one. The
function is not named: ``local.invoke`` finds it from the event, and fills in the ids made at run time. The
Twilio samples are signed for ``http://127.0.0.1:3000`` (local/tests/test_events.py checks that); this stack
listens on another port, so they are re-signed for it first with ``python -m local.sign_twilio``, as
events/README.md says to.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local import REPO_ROOT
from local.testing import RunningStack, readme_try_it, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

EVENTS = REPO_ROOT / "events"


def body(answer: dict[str, Any]) -> Any:
    text = answer.get("body") or ""
    return json.loads(text) if answer.get("headers", {}).get("Content-Type", "").startswith("application/json") \
        else text


def ok(status: int, check: Callable[[dict[str, Any]], bool] = lambda a: True) -> Callable[[dict[str, Any]], bool]:
    return lambda answer: answer.get("statusCode") == status and check(answer)


# (sample, what its answer must be), in the order of events/README.md.
RUN: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("twilio_inbound.json", ok(200, lambda a: a["body"] == "<Response/>")),
    ("twilio_inbound.json", ok(200, lambda a: a["body"] == "<Response/>")),  # a redelivery: nothing new
    ("meta_verify.json", ok(200, lambda a: a["body"] == "1158201444")),
    ("meta_text.json", ok(200, lambda a: body(a)["stored"] == 1)),
    ("meta_image.json", ok(200, lambda a: body(a)["stored"] == 1)),
    ("channels_list.json", ok(200, lambda a: len(body(a)["items"]) == 2)),
    ("channels_get.json", ok(200, lambda a: body(a)["phone_number"] == "+14155238886")),
    ("channels_update.json", ok(200, lambda a: body(a)["auto_reply"]["mode"] == "on")),
    ("channels_check.json", ok(200)),
    ("channels_create.json", ok(201, lambda a: body(a)["phone_number"] == "+14155550123")),
    ("channels_create.json", ok(409)),
    ("channels_delete.json", ok(204)),
    ("conversations_list.json", ok(200, lambda a: len(body(a)["items"]) == 2)),
    ("conversations_get.json", ok(200, lambda a: body(a)["contact"]["phone"] == "+14155550100")),
    ("conversations_update.json", ok(200, lambda a: body(a)["unread_count"] == 0)),
    ("messages_list.json", ok(200, lambda a: [m["direction"] for m in body(a)["items"]] == ["inbound"])),
    ("messages_send.json", ok(201, lambda a: body(a)["status"] == "sent")),
    ("messages_send.json", ok(201, lambda a: a["headers"].get("Idempotent-Replayed") == "true")),
    ("twilio_status.json", ok(200)),
    ("meta_statuses.json", ok(200, lambda a: body(a)["statuses"] == {"parked": 2})),
    ("messages_stream.json", lambda a: a == {"batchItemFailures": []}),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("samples-stack"))
    try:
        yield running
    finally:
        code = running.stop(signal.SIGTERM)
        assert code == 0, f"local stack exited with {code} on SIGTERM:\n{running.output()}"


def make_invoke(stack: RunningStack, event: Path, out: Path) -> dict[str, Any]:
    """``make invoke EVENT=<event>`` against ``stack``: the response it prints (here written to ``out``)."""
    env = {"LOCAL_STATE_FILE": str(stack.state_path)}
    run = _run([sys.executable, "-m", "local.invoke", str(event), "-o", str(out)], env)
    assert run.returncode == 0, f"make invoke EVENT={event.name} exited {run.returncode}:\n{run.stderr[-3000:]}"
    return dict(json.loads(out.read_text()))


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_every_sample_answers_as_documented_after_the_readme_try_it(stack: RunningStack, tmp_path: Path) -> None:
    import requests

    values = readme_try_it()
    token = requests.post(f"{stack.base_url}/_local/token", json=values["token"], timeout=30).json()["id_token"]
    for channel in values["channels"].values():
        created = requests.post(f"{stack.base_url}/v1/channels", json=channel, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
    twilio_token = values["channels"]["twilio"]["auth_token"]
    documented = {p.name for p in EVENTS.glob("*.json")} - {"env.json"}
    assert {name for name, _ in RUN} == documented, "every sample has its expected answer here"

    for step, (name, expected) in enumerate(RUN):
        event = EVENTS / name
        if name.startswith("twilio_"):  # signed for :3000; this stack is on another port
            signed = tmp_path / f"signed-{name}"
            run = _run([sys.executable, "-m", "local.sign_twilio", "--token", twilio_token, str(event), "-o",
                        str(signed)], {"LOCAL_STATE_FILE": str(stack.state_path)})
            assert run.returncode == 0, run.stderr
            event = signed
        answer = make_invoke(stack, event, tmp_path / f"answer-{step}.json")
        assert expected(answer), f"{name}: {json.dumps(answer)[:2000]}"
