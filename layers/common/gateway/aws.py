"""boto3 clients, created lazily (cold start pays only for what a path uses) and reused while warm."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from gateway.config import get_settings

_lock = threading.Lock()


@cache
def client(service: str) -> Any:
    """A shared client per service. boto3 clients are thread-safe; creating them is not, hence the lock."""
    import boto3
    from botocore.config import Config

    with _lock:
        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 3},
        )
        return boto3.session.Session().client(service, region_name=get_settings().region, config=config)


def reset_clients() -> None:
    """Tests: forget clients built against another endpoint or mock."""
    client.cache_clear()
