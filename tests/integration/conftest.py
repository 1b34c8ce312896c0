"""Integration fixtures: moto in-process with every resource of template.yaml, handlers called in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local import TEMPLATE_PATH
from local.provision import Resources
from local.runtime import FunctionRuntime
from local.template import Template, load_template
from local.testing import ApiEvents, id_token_claims, provisioned_moto

# What providers call in these tests; the template's default ("") would mean "derive from the API id".
TEST_PUBLIC_BASE_URL = "https://gateway.example.test"


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(TEMPLATE_PATH)


def _reset_layer_caches() -> None:
    """The layer reads settings and builds clients once per cold start; every test is a fresh deployment
    (new KMS key id, new mock), so forget them. Tolerant of a layer that does not have them (yet)."""
    try:
        from gateway.aws import reset_clients
        from gateway.config import get_settings
    except ImportError:
        return
    get_settings.cache_clear()
    reset_clients()


@pytest.fixture
def aws(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[Resources]:
    """moto (``mock_aws``) with the template's tables, bucket, key, user pool, bus and queue; the functions'
    environment variables (table names...) set. Yields the physical ids."""
    with provisioned_moto(template, monkeypatch, parameters={"PublicBaseUrl": TEST_PUBLIC_BASE_URL}) as resources:
        _reset_layer_caches()
        yield resources
    _reset_layer_caches()


@pytest.fixture
def api_event(template: Template) -> ApiEvents:
    """``api_event("POST", "/v1/channels", json={...}, claims=claims())``: an HTTP API v2 event for the route."""
    return ApiEvents(template)


@pytest.fixture
def claims() -> Callable[..., dict[str, Any]]:
    """``claims(tenant_id="acme", admin=True)``: Cognito ID token claims (flattened by the event builder)."""
    return id_token_claims


@pytest.fixture
def invoke(aws: Resources) -> Callable[[str, dict[str, Any]], Any]:
    """``invoke("ChannelsApiFunction", event)``: the handler loaded like Lambda would (fresh cold start)."""
    return FunctionRuntime(aws).invoke


@pytest.fixture(autouse=True)
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every moto DynamoDB request atomic, as in DynamoDB (see local/moto_atomic.py), and a cancelled transaction
    rolled back item by item as the local stack does (local/moto_transactions.py): moto's own rollback puts a
    copy of each table back, and the table's stream, read through the copy that was replaced, misses every later
    record."""
    from local.moto_atomic import make_dynamodb_atomic
    from local.moto_transactions import make_transactions_cheap

    make_transactions_cheap(monkeypatch.setattr)
    make_dynamodb_atomic(monkeypatch.setattr)
