"""Test helpers shared by the conftest files (the fixtures themselves stay thin wrappers there).

- ``fake_aws_env``: credentials and region that can never reach a real AWS account.
- ``provisioned_moto``: moto in-process with everything from a template created by ``local.provision``.
- ``ApiEvents``: HTTP API v2 events for calling a handler in-process, built by the very code the local gateway
  uses (``local.apigw``), routed by the template's routes.
- ``start_stack`` / ``LocalStackClient``: the real ``python -m local.dev`` in a subprocess, for e2e tests.
- ``wait_for``: poll until something happened in the background (a hang guard, not a deadline).
- ``at_once``: the same call from several threads released together (concurrency tests for duplicates).
- ``readme_try_it``: the JSON bodies of the README's "Try it" commands (the values the samples in events/ are for).
- ``MediaHost``: an HTTP media source shaped like Twilio's (Basic auth on the API host, redirect to a CDN host
  that must never see the credentials).
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from local import REPO_ROOT
from local.apigw import ApiContext, HttpRequest, Router, build_event
from local.provision import Resources, provision
from local.template import Template

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore sends DynamoDB Streams calls to {account}.streams-ddb.{region}, a host moto's in-process mock
    # does not recognise (moto server is unaffected: AWS_ENDPOINT_URL wins there).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
# Variables that would send boto3 somewhere else than moto's in-process mock.
UNSAFE_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UNSAFE_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@contextlib.contextmanager
def provisioned_moto(
    template: Template,
    monkeypatch: pytest.MonkeyPatch,
    *,
    stage: str = "test",
    parameters: Mapping[str, Any] | None = None,
) -> Iterator[Resources]:
    """``mock_aws`` with the template's resources created and the functions' shared env vars set."""
    import boto3
    from moto import mock_aws

    fake_aws_env(monkeypatch)
    with mock_aws():
        resources = provision(boto3.session.Session(), template, stage, parameters=parameters)
        for name, value in resources.globals_env().items():
            monkeypatch.setenv(name, value)
        yield resources


def id_token_claims(
    tenant_id: str | None = "acme",
    *,
    admin: bool = True,
    groups: list[str] | None = None,
    issuer: str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test",
    audience: str = "testclient",
    **extra: Any,
) -> dict[str, Any]:
    """Claims shaped like a Cognito ID token's (before the authorizer flattens them)."""
    now = int(time.time())
    subject = str(uuid.uuid4())
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "token_use": "id",
        "cognito:username": subject,
        "email": f"{tenant_id or 'nobody'}@local.test",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
    }
    if tenant_id is not None:
        claims["custom:tenant_id"] = tenant_id
    member_of = groups if groups is not None else (["admin"] if admin else [])
    if member_of:
        claims["cognito:groups"] = member_of
    return {**claims, **extra}


class ApiEvents:
    """``events("POST", "/v1/channels", json={...}, claims=id_token_claims())`` → a payload 2.0 event."""

    def __init__(self, template: Template, api: ApiContext | None = None) -> None:
        self.router = Router(template.http_routes())
        self.api = api or ApiContext()

    def __call__(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        form: Mapping[str, str] | None = None,
        query: Mapping[str, str] | str | None = None,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        header_list = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        raw_body = self._body(json, body, form, header_list)
        match = self.router.match(method, path)
        if match is None:
            raise LookupError(f"template.yaml has no route for {method} {path}")
        request = HttpRequest(
            method=method.upper(),
            path=path,
            query_string=query if isinstance(query, str) else urlencode(query or {}),
            headers=[("host", "127.0.0.1:3000"), ("user-agent", "pytest"), *header_list],
            body=raw_body,
        )
        return build_event(request, match, api=self.api, claims=claims)

    @staticmethod
    def _body(
        json: Any, body: bytes | str | None, form: Mapping[str, str] | None, headers: list[tuple[str, str]]
    ) -> bytes:
        has_type = any(k.lower() == "content-type" for k, _ in headers)
        if json is not None:
            if not has_type:
                headers.append(("content-type", "application/json"))
            return jsonlib.dumps(json).encode()
        if form is not None:
            if not has_type:
                headers.append(("content-type", "application/x-www-form-urlencoded"))
            return urlencode(form).encode()
        return body.encode() if isinstance(body, str) else body or b""


def readme_try_it() -> dict[str, Any]:
    """The README's "Try it" commands' JSON bodies: ``{"token": <token request>, "channels": {provider: body}}``."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Try it against `make dev`"):]
    start = section.index("```bash")
    block = section[start:section.index("```\n", start + 7)]
    bodies = [jsonlib.loads(b) for b in re.findall(r"-d '(\{.*?\})'", block)]
    return {"token": bodies[0], "channels": {c["provider"]: c for c in bodies[1:]}}


# ---------------------------------------------------------------------------------------------- e2e
STARTUP_TIMEOUT_S = 60  # the local stack's contract: ready within 60 s; usually up in 2-3 s
STOP_TIMEOUT_S = 15
# Called with ("started" | "stopping", stack) for every stack ``start_stack`` brings up: the secrets guard
# (tests/secrets_guard.py) reads each stack's output and events through them. An observer must not raise.
STACK_OBSERVERS: list[Callable[[str, RunningStack], None]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningStack:
    """A ``python -m local.dev`` subprocess and what its state file says."""

    process: subprocess.Popen[bytes]
    log_path: Path
    state_path: Path
    base_url: str
    state: dict[str, Any] = field(default_factory=dict)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the stack and wait; returns its exit code (fails the test if it does not stop in time)."""
        for observer in STACK_OBSERVERS:
            observer("stopping", self)
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"local stack did not stop within {STOP_TIMEOUT_S} s of {signal.Signals(sig).name}")


def start_stack(tmp_dir: Path, *, extra_env: dict[str, str] | None = None) -> RunningStack:
    """Start the stack on a free port and wait for ``/_local/health``; fail with its output after 60 s."""
    port = free_port()
    log_path = tmp_dir / f"local-dev-{port}.log"
    state_path = tmp_dir / f"state-{port}.json"
    env = {**os.environ, "PORT": str(port), "LOCAL_STATE_FILE": str(state_path), "PYTHONUNBUFFERED": "1"}
    for name in ("TWILIO_API_BASE_URL", "META_GRAPH_BASE_URL", "MEDIA_ALLOWED_HOSTS", "AWS_ENDPOINT_URL"):
        env.pop(name, None)  # the stack's own defaults (the sandbox), whatever the developer's shell says
    env.update(extra_env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    stack = RunningStack(process, log_path, state_path, f"http://127.0.0.1:{port}")
    _wait_healthy(stack)
    stack.state = jsonlib.loads(state_path.read_text())
    for observer in STACK_OBSERVERS:
        observer("started", stack)
    return stack


def _wait_healthy(stack: RunningStack) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"local stack exited with {stack.process.returncode}:\n{stack.output()}")
        try:
            if requests.get(f"{stack.base_url}/_local/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stack.process.kill()
    pytest.fail(f"local stack not healthy within {STARTUP_TIMEOUT_S} s:\n{stack.output()}")


@dataclass
class LocalStackClient:
    """What e2e tests need: the URLs, tokens from the local Cognito, and an HTTP session."""

    stack: RunningStack
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def sandbox_url(self) -> str:
        return str(self.stack.state["sandbox_url"])

    @property
    def state(self) -> dict[str, Any]:
        return self.stack.state

    def token(self, tenant_id: str | None = "acme", admin: bool = True) -> str:
        body: dict[str, Any] = {"admin": admin}
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        response = self.http.post(f"{self.base_url}/_local/token", json=body, timeout=10)
        response.raise_for_status()
        return str(response.json()["id_token"])

    def request(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def sandbox_requests(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.sandbox_url}/_sandbox/requests", timeout=10).json()["requests"])


# Waiting for what happens in the background (stream processing, status reports): the bound only guards against a
# hang, it is no performance target (on a loaded machine the background work is slow, not wrong).
HANG_GUARD_S = 120.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = HANG_GUARD_S) -> Any:
    """Poll ``check()`` until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (a hang guard of {timeout:.0f} s)")


# ---------------------------------------------------------------------------------------------- concurrency
def at_once(call: Callable[[], Any], count: int = 10, timeout: float = 60.0) -> list[Any]:
    """``call()`` from ``count`` threads that start together (a barrier), so their requests race; the results
    in no particular order. An exception in any call is raised here."""
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(count)

    def run(_: int) -> Any:
        start.wait(timeout)
        return call()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count), timeout=timeout))


# ---------------------------------------------------------------------------------------------- media source
class _MediaHandler(BaseHTTPRequestHandler):
    server: MediaHost
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        self.server.hits.append((host, self.path, self.headers.get("Authorization")))
        route = self.server.routes.get(self.path)
        if route is not None:
            return route(self)
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith(self.server.api_prefix):
            if host != "127.0.0.1" or self.headers.get("Authorization") != self.server.basic:
                return self.send_body(401, b'{"code":20003,"message":"Authenticate"}', "application/json")
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{self.server.port}/cdn/{name}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/cdn/") and name in self.server.files:
            if self.headers.get("Authorization"):
                return self.send_body(400, b"credentials must not reach the CDN")
            body, content_type = self.server.files[name]
            return self.send_body(200, body, content_type)
        return self.send_body(404, b"")

    def send_body(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class MediaHost(ThreadingHTTPServer):
    """Serves ``files`` (name → (bytes, content type)) the way Twilio serves media: ``<api_prefix>…/<name>`` on
    127.0.0.1 needs ``basic`` (an Authorization header value) and answers 307 to ``/cdn/<name>`` on the host name
    ``localhost``, which refuses any Authorization header, so forwarding credentials across the redirect fails.
    ``routes`` (exact path → handler function) add other behaviours. ``hits`` records (host, path, Authorization).
    Use as a context manager: it serves on a thread until the block ends."""

    daemon_threads = True
    block_on_close = False  # a keep-alive connection a client left open must not hold up the shutdown

    def __init__(
        self,
        files: Mapping[str, tuple[bytes, str]],
        *,
        basic: str = "",
        api_prefix: str = "/api/",
        port: int = 0,
        routes: Mapping[str, Callable[[_MediaHandler], None]] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _MediaHandler)
        self.files, self.basic, self.api_prefix = dict(files), basic, api_prefix
        self.routes = dict(routes or {})
        self.hits: list[tuple[str, str, str | None]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MediaHost:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
