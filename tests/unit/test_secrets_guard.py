"""The secrets guard (tests/secrets_guard.py) itself: what it knows, what it finds, and that it fails a test.

The wiring into the real outputs is shown by tests/integration/test_secrets_guard_wiring.py (in-process
handlers, logs, events) and tests/e2e/test_secrets_guard_e2e.py (a local stack's responses, output and bus).
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from tests import secrets_guard
from tests.secrets_guard import JWT, SecretRegistry, harvest_source, render_record

ROOT = Path(__file__).resolve().parents[2]
A_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhYmMiLCJjdXN0b206dGVuYW50X2lkIjoiYWNtZSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture
def registry() -> SecretRegistry:
    found = SecretRegistry()
    found.add("acme-auth-token-0123456789abcdef", "here")
    found.add("twilio-secret-", "there", fragment=True)
    found.add("EAAG-line\nbreak-0123€", "elsewhere")
    return found


def test_values_that_cannot_be_told_from_ordinary_text_are_not_registered() -> None:
    found = SecretRegistry()

    for value in ("t", "EAAG", "testing", "auth_token", "access_token", "••••0001", "[redacted]", "a b c d e f"):
        assert not found.add(value, "test"), value
    assert not found.add("revoked-", "test", fragment=True)  # too short for a fragment
    assert found.add("s3cret-value", "test")
    assert len(found) == 1


@pytest.mark.parametrize(
    "text",
    [
        'INFO stored {"auth_token": "acme-auth-token-0123456789abcdef"}',
        "AccountSid=AC1&Token=" + quote_plus("acme-auth-token-0123456789abcdef"),
        json.dumps({"detail": json.dumps({"k": "acme-auth-token-0123456789abcdef"})}),
        "credentials twilio-secret-a1b2c3d4 rejected",
        f"Authorization: Bearer {A_JWT}",
        json.dumps({"exception": "InvalidHeader: " + repr("Bearer EAAG-line\nbreak-0123€")}),
    ],
    ids=["plain", "form-encoded", "json-in-json", "generated-secret-fragment", "any-jwt", "repr-in-a-json-log"],
)
def test_scan_finds_a_secret_in_its_usual_encodings(registry: SecretRegistry, text: str) -> None:
    leaks = registry.scan(text, "somewhere")

    assert len(leaks) == 1 and leaks[0].where == "somewhere"
    assert "«SECRET»" in leaks[0].excerpt
    assert "0123456789abcdef" not in str(leaks[0]) and A_JWT not in str(leaks[0])  # the report masks it
    assert "break-0123" not in str(leaks[0])


def test_scan_is_quiet_for_hints_and_other_text(registry: SecretRegistry) -> None:
    assert registry.scan('{"credentials": {"auth_token": "••••cdef"}, "name": "acme-auth"}', "x") == []
    assert not JWT.search("eyJhbGciOiJub25lIn0")  # a JWT header alone is not a token


def test_record_rendering_includes_arguments_extras_and_traceback() -> None:
    try:
        raise RuntimeError("kms said no to acme-auth-token-0123456789abcdef")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed for %s", ("ch_1",), exc_info=__import__("sys").exc_info(),
            extra={"channel": {"app_secret": "x-app-secret-value"}},
        )

    text = render_record(record)

    assert "failed for ch_1" in text and "x-app-secret-value" in text and "kms said no to acme" in text


def test_harvest_reads_the_secrets_tests_write(tmp_path: Path) -> None:
    source = tmp_path / "test_sample.py"
    source.write_text(textwrap.dedent('''
        import secrets
        TOKEN = "sample-auth-token-0123456789"
        VERIFY_TOKEN = "sample-verify-token-0123"
        SECRET_FIELDS = ("auth_token", "access_token")
        BODY = {"provider": "meta", "access_token": "EAAG-sample-access-token", "app_secret": APP}
        APP = "sample-app-secret-9876"

        def channel(auth_token: str = TOKEN, *, name: str = "not-a-secret-at-all") -> dict:
            return {"auth_token": auth_token, "verify_token": "sample-verify-token-4567"}

        def test_x():
            create(access_token="twilio-secret-" + secrets.token_hex(8), app_secret=f"e2e-app-secret-{1}")
    '''))

    harvest = harvest_source(source)
    found = {(value, fragment) for value, fragment, _ in harvest.secrets}

    assert {
        ("sample-auth-token-0123456789", False),
        ("EAAG-sample-access-token", False),
        ("sample-app-secret-9876", False),
        ("twilio-secret-", True),
        ("e2e-app-secret-", True),
    } <= found
    values = {value for value, _ in found}
    assert not {"sample-verify-token-0123", "sample-verify-token-4567", "not-a-secret-at-all"} & values
    assert {"sample-verify-token-0123", "sample-verify-token-4567"} <= {value for value, _, _ in harvest.public}
    registry = SecretRegistry()
    registry.harvest([source])
    assert "auth_token" not in registry and "sample-auth-token-0123456789" in registry


def test_a_value_some_test_uses_as_a_verify_token_is_not_tracked(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text('WRONG = dict(auth_token="not-the-right-one")\n')
    (tmp_path / "test_b.py").write_text('QUERY = {"hub.verify_token": "not-the-right-one"}\n')
    registry = SecretRegistry()

    registry.harvest([tmp_path / "test_a.py"])
    assert "not-the-right-one" in registry
    registry.harvest([tmp_path / "test_b.py"])

    assert "not-the-right-one" not in registry
    assert not registry.add("not-the-right-one", "again")


def test_the_suite_secrets_are_known() -> None:
    guard = secrets_guard._guard
    assert guard is not None, "tests/conftest.py loads the guard"

    for value in ("twilio-auth-token-0001", "EAAG-meta-access-token-0001", "meta-app-secret-0001",
                  "acme-meta-app-secret-0123456789", "twilio-secret-", "e2e-app-secret-"):
        assert value in guard.registry, value
    for value in ("acme-verify-token-0123", "testing", "[redacted]"):
        assert value not in guard.registry, value


INNER_TESTS = '''
import json
import logging

import boto3
import pytest
from moto import mock_aws

from tests.secrets_guard import register_secret

AUTH_TOKEN = "inner-auth-token-0123456789"


def test_clean_logs_and_requests():
    body = json.dumps({"auth_token": AUTH_TOKEN})  # requests may carry secrets
    logging.getLogger("gateway").warning("channel created", extra={"channel_id": "ch_1", "size": len(body)})


def test_log_record_leak():
    logging.getLogger("gateway").info("not enabled, so never output: %s", AUTH_TOKEN)
    logging.getLogger("gateway").warning("rotated to %s", AUTH_TOKEN)


def test_powertools_extra_leak():
    from aws_lambda_powertools import Logger

    Logger(service="inner").info("stored", extra={"credentials": {"auth_token": AUTH_TOKEN}})


def test_stdout_jwt_leak():
    print("Authorization: Bearer JWT_HERE")


def test_event_leak(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    generated = "-".join(["inner", "generated", "9876543210"])  # no test source spells it out
    assert register_secret(generated)
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        detail = json.dumps({"channel": {"access_token": generated}})
        events.put_events(Entries=[{"Source": "whatsapp.gateway", "DetailType": "x", "Detail": detail}])


@pytest.mark.secrets_allowed("shows the opt-out")
def test_allowed():
    logging.getLogger("gateway").error(AUTH_TOKEN)


def test_already_failing_test_gets_the_leak_as_a_section():
    logging.getLogger("gateway").error(AUTH_TOKEN)
    assert False, "failed anyway"
'''.replace("JWT_HERE", A_JWT)


@pytest.mark.secrets_allowed("its sub-run leaks on purpose, and pytester echoes the sub-run's output")
def test_guard_fails_the_tests_that_leak(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.secrets_guard"]')
    pytester.makepyfile(test_inner=INNER_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")

    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines_random([
        "PASSED test_inner.py::test_clean_logs_and_requests",
        "PASSED test_inner.py::test_allowed",
        "FAILED test_inner.py::test_log_record_leak*",
        "FAILED test_inner.py::test_powertools_extra_leak*",
        "FAILED test_inner.py::test_stdout_jwt_leak*",
        "FAILED test_inner.py::test_event_leak*",
        "FAILED test_inner.py::test_already_failing_test_gets_the_leak_as_a_section*",
        "*secrets guard: * test secret(s) in what the gateway put out during"
        " test_inner.py::test_log_record_leak (call)*",
        "*'inne…' (*test_inner.py:* AUTH_TOKEN) in log record gateway WARNING (*test_inner.py:*): rotated to «SECRET»",
        "*'inne…' (*test_inner.py:* AUTH_TOKEN) in log record inner INFO*credentials={'auth_token': '«SECRET»'}",
        "*'inne…' (*test_inner.py:* AUTH_TOKEN) in captured stdout call of test_inner.py::test_powertools_extra_leak*",
        "*a JWT in captured stdout call of test_inner.py::test_stdout_jwt_leak: Authorization: Bearer «SECRET»*",
        "*'inne…' (registered by a test) in an event put on EventBridge*",
        "*- secrets guard -*",
        "*AssertionError: failed anyway*",
    ])
    assert "inner-auth-token-0123456789" not in "\n".join(
        line for line in result.stdout.lines if "secrets guard" in line or "«SECRET»" in line
    )
