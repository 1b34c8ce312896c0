"""``python -m local.invoke FUNCTION EVENT_JSON`` (``make invoke FUNCTION=… EVENT=…``).

Runs one function's handler once, in this process, against the resources of the running ``make dev`` (read from
``.local/state.json``), with the same environment the gateway gives it, and prints the response as JSON.
FUNCTION is the function's directory name (``channels_api``) or logical id (``ChannelsApiFunction``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from local.dev import aws_env
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.state import read_state
from local.template import load_template


def invoke(function: str, event: Any, state: dict[str, Any]) -> Any:
    template = load_template(state["template"])
    resources = Resources.from_dict(template, state["resources"])
    spec = template.function(function)
    os.environ.update(aws_env(state["aws_endpoint"], state["region"]))
    os.environ.update(resources.function_env(spec.logical_id))
    return FunctionRuntime(resources).invoke(spec.logical_id, event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="function directory name (channels_api) or logical id")
    parser.add_argument("event", type=Path, help="path of the event JSON file")
    args = parser.parse_args(argv)
    try:
        state = read_state()
        event = json.loads(args.event.read_text())
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = invoke(args.function, event, state)
    except KeyError as exc:  # unknown function
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except Exception:
        # What Lambda would report as the invocation's error.
        traceback.print_exc()
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
