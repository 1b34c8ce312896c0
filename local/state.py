"""``.local/state.json``: where a running ``make dev`` is, for other commands (``make invoke``, tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from local import REPO_ROOT

# Tests point this elsewhere so that an e2e run never overwrites a developer's running stack's state.
STATE_FILE_ENV = "LOCAL_STATE_FILE"


def state_path() -> Path:
    return Path(os.environ.get(STATE_FILE_ENV) or REPO_ROOT / ".local" / "state.json")


def write_state(state: dict[str, Any], path: Path | None = None) -> Path:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)  # readers never see half a file
    return path


def read_state(path: Path | None = None) -> dict[str, Any]:
    path = path or state_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: start the local stack with `make dev` first")
    state: dict[str, Any] = json.loads(path.read_text())
    if not _alive(int(state.get("pid", 0))):
        raise RuntimeError(f"{path} belongs to a stack that is no longer running (pid {state.get('pid')})")
    return state


def remove_state(pid: int, path: Path | None = None) -> None:
    """Remove the state file if it is still ours (another stack may have started since)."""
    path = path or state_path()
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
