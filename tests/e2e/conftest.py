"""End to end: the real local stack (``python -m local.dev``) in a subprocess, driven over HTTP.

One stack per test session (per xdist worker: modules mark themselves ``xdist_group("local_stack")`` so that
``--dist loadgroup`` keeps them on one worker). Its state file goes to a temporary directory so that a
developer's running ``make dev`` is never disturbed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from local.testing import LocalStackClient, start_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    stack = start_stack(tmp_path_factory.mktemp("local-stack"))
    client = LocalStackClient(stack)
    try:
        yield client
    finally:
        client.http.close()
        code = stack.stop(signal.SIGTERM)
        assert code == 0, f"local stack exited with {code} on SIGTERM:\n{stack.output()}"
