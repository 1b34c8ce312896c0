"""Fixtures shared by every test suite."""

from __future__ import annotations

import pytest

from local.runtime import LambdaContext, fake_context
from local.testing import fake_aws_env

# The secrets guard checks every test's outputs (tests/secrets_guard.py), the IAM coverage check every AWS call
# of the functions against their Policies (tests/iam_coverage.py); pytester runs their own tests.
pytest_plugins = ["tests.secrets_guard", "tests.iam_coverage", "pytester"]


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real AWS account: fake credentials, fixed region, no endpoint or profile."""
    fake_aws_env(monkeypatch)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return fake_context("test-function", memory_mb=512, timeout_seconds=10)
