"""``python -m local.dev`` (``make dev``): the whole stack on this machine, no AWS account, no Docker.

moto server (resources created from template.yaml) → provider sandbox → stream poller → HTTP gateway on
``$PORT`` (default 3000), which also serves the web console at ``/`` with a demo login (local/console.py).
Ctrl-C or SIGTERM stops everything. Environment overrides: ``PORT``, ``TWILIO_API_BASE_URL``,
``META_GRAPH_BASE_URL``, ``MEDIA_ALLOWED_HOSTS`` (docs/local-stack.md), and for tinkering
``LOCAL_FUNCTION_CONCURRENCY`` (instances per function, default 1), ``LOCAL_STATE_FILE`` and
``CONSOLE_EXTRA_ORIGINS`` (origins the API's CORS allows besides the console's own). The tests set
``LOCAL_AWS_ACTIONS_DIR`` (``local.aws_actions``: the functions' AWS calls, checked against their IAM policies).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from local import TEMPLATE_PATH, aws_actions, console
from local.apigw import HttpRequest, HttpResponse, json_response
from local.http_gateway import LocalGateway, LocalHttpServer, serve_in_thread
from local.identity import LocalIdentity
from local.poller import StreamPoller
from local.provision import Resources, provision
from local.runtime import FunctionRuntime
from local.sandbox import ProviderSandbox, default_sandbox
from local.state import remove_state, state_path, write_state
from local.template import Template, load_template

log = logging.getLogger("local.dev")

HOST = "127.0.0.1"
STAGE = "local"
REGION = "us-east-1"
DEFAULT_PORT = 3000
DEFAULT_MEDIA_ALLOWED_HOSTS = "127.0.0.1,localhost"


def aws_env(endpoint: str, region: str = REGION) -> dict[str, str]:
    """What every AWS client in this process needs to talk to moto and never to AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"])),
    }


def local_parameters(template: Template, base_url: str) -> dict[str, Any]:
    """The parameters whose local values differ from their defaults: providers call *this* gateway; browsers on
    other origins (tests, a dev server) may call the API when ``CONSOLE_EXTRA_ORIGINS`` names them."""
    wanted = {"PublicBaseUrl": base_url, "ConsoleExtraOrigins": os.environ.get("CONSOLE_EXTRA_ORIGINS")}
    return {k: v for k, v in wanted.items() if v is not None and k in template.parameters}


def env_overrides(base_url: str, sandbox_url: str) -> dict[str, str]:
    """What every function's environment gets on top of the template's in the local stack."""
    return {
        "PUBLIC_BASE_URL": base_url,
        "TWILIO_API_BASE_URL": os.environ.get("TWILIO_API_BASE_URL") or sandbox_url,
        "META_GRAPH_BASE_URL": os.environ.get("META_GRAPH_BASE_URL") or sandbox_url,
        "MEDIA_ALLOWED_HOSTS": os.environ.get("MEDIA_ALLOWED_HOSTS") or DEFAULT_MEDIA_ALLOWED_HOSTS,
        # The sandbox serves media over http on 127.0.0.1: allowed here only (gateway/egress.py).
        "MEDIA_ALLOW_LOOPBACK": "true",
    }


def channel_app_secret(phone_number_id: str) -> str | None:
    """The app secret Meta would sign this number's notifications with: the one its active channel was connected
    with, else the stack's META_APP_SECRET (docs/decisions.md D20). Read afresh with the gateway's own repository
    and cipher, new instances, so no cache is shared with the functions (which run in this process)."""
    from gateway.bootstrap import ready
    from gateway.credentials import CredentialsCipher
    from gateway.domain.channel import route_key_meta
    from gateway.store.channels_repo import ChannelRepository

    settings = ready()
    channel = ChannelRepository().resolve(route_key_meta(phone_number_id))
    own = None
    if channel is not None:
        own = CredentialsCipher().decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext)
    return (own or {}).get("app_secret") or settings.meta_app_secret or None


@dataclass
class LocalStack:
    port: int = DEFAULT_PORT
    template: Template = field(default_factory=lambda: load_template(TEMPLATE_PATH))
    function_concurrency: int = 1
    moto: Any = None
    resources: Resources | None = None
    runtime: FunctionRuntime | None = None
    gateway: LocalGateway | None = None
    sandbox: ProviderSandbox | None = None
    poller: StreamPoller | None = None
    demo: console.DemoLogin | None = None
    _gateway_server: LocalHttpServer | None = None
    _sandbox_server: LocalHttpServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def moto_url(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def sandbox_url(self) -> str:
        assert self._sandbox_server is not None
        return f"http://{HOST}:{self._sandbox_server.port}"

    # ------------------------------------------------------------------------------------------ start
    def start(self) -> LocalStack:
        # The gateway socket first: a taken port fails at once, and /_local/health answers 503 while starting.
        self._gateway_server = LocalHttpServer((HOST, self.port), self._dispatch)
        self.port = self._gateway_server.port
        serve_in_thread(self._gateway_server, "gateway")

        self.sandbox = default_sandbox()
        self._sandbox_server = LocalHttpServer((HOST, int(os.environ.get("SANDBOX_PORT", "0"))), self.sandbox.handle)
        serve_in_thread(self._sandbox_server, "sandbox")

        self._start_moto()
        os.environ.update(aws_env(self.moto_url))
        import boto3  # after the environment points at moto

        session = boto3.session.Session()
        self.resources = provision(session, self.template, STAGE, parameters=self._parameters(), region=REGION)
        self.resources.env_overrides = self._env_overrides()
        os.environ.update(self.resources.globals_env())

        self.runtime = FunctionRuntime(self.resources, max_concurrency=self.function_concurrency)
        # The sandbox plays Meta: its status notifications go to this gateway, signed with the number's app secret.
        self.sandbox.meta_webhook_url = f"{self.base_url}/webhooks/meta"
        self.sandbox.meta_app_secret = channel_app_secret
        self.gateway = LocalGateway(
            self.resources, self.runtime, aws_endpoint=self.moto_url, identity=self._identity(session)
        )
        self.poller = StreamPoller(
            self.resources,
            self.runtime.invoke,
            lambda service: session.client(service, region_name=REGION),
            enabled_functions=set(self.runtime.function_ids()),
        )
        self.poller.start()
        self.demo = console.register(self.gateway, stage=STAGE, moto_url=self.moto_url)
        write_state(self.state())
        self.gateway.ready.set()
        threading.Thread(target=self._warm_functions, name="warm-up", daemon=True).start()
        return self

    def _dispatch(self, request: HttpRequest) -> HttpResponse:
        if self.gateway is None:  # still provisioning
            if request.path == "/_local/health":
                return json_response(503, {"status": "starting"})
            return json_response(503, {"message": "Service Unavailable"})
        return self.gateway.handle(request)

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from local.moto_atomic import make_dynamodb_atomic
        from local.moto_transactions import make_transactions_cheap

        make_transactions_cheap()  # a transaction costs what it touches, not a copy of its tables (before the lock)
        make_dynamodb_atomic()  # concurrent duplicates must meet DynamoDB's semantics, not moto's races
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call is noise
        self.moto = ThreadedMotoServer(ip_address=HOST, port=int(os.environ.get("MOTO_PORT", "0")), verbose=False)
        self.moto.start()

    def _parameters(self) -> dict[str, Any]:
        return local_parameters(self.template, self.base_url)

    def _env_overrides(self) -> dict[str, str]:
        return env_overrides(self.base_url, self.sandbox_url)

    def _identity(self, session: Any) -> LocalIdentity | None:
        assert self.resources is not None
        try:
            pool = self.resources.first_of_type("AWS::Cognito::UserPool")
        except LookupError:
            return None
        clients = [
            r
            for r in self.resources.physical.values()
            if r.type == "AWS::Cognito::UserPoolClient" and r.attributes.get("UserPoolId") == pool.ref
        ]
        if not clients:
            return None
        return LocalIdentity(session.client("cognito-idp", region_name=REGION), pool.ref, clients[0].ref)

    def _warm_functions(self) -> None:
        # Cold starts now rather than on the first request; an import error shows up in the log right away.
        assert self.runtime is not None
        for function_id in self.runtime.function_ids():
            try:
                self.runtime.pool(function_id).warm()
            except Exception as exc:  # the gateway answers 500 for it and logs the traceback then
                log.warning("%s does not load yet: %s: %s", function_id, type(exc).__name__, exc)

    # ------------------------------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.ready.clear()
        for server in (self._gateway_server, self._sandbox_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        if self.poller is not None:
            self.poller.stop()
        if self.moto is not None:
            self.moto.stop()
        remove_state(os.getpid())

    # ------------------------------------------------------------------------------------------ facts
    def state(self) -> dict[str, Any]:
        assert self.resources is not None and self.gateway is not None
        identity = self.gateway.identity
        return {
            "pid": os.getpid(),
            "started_at": time.time(),
            "template": str(self.template.path),
            "gateway_url": self.base_url,
            "port": self.port,
            "aws_endpoint": self.moto_url,
            "sandbox_url": self.sandbox_url,
            "region": REGION,
            "user_pool_id": identity.user_pool_id if identity else None,
            "user_pool_client_id": identity.client_id if identity else None,
            "console_url": f"{self.base_url}/",
            "demo_login": {"email": self.demo.email, "password": self.demo.password, "tenant_id": self.demo.tenant_id}
            if self.demo
            else None,
            "tables": self.resources.names("AWS::DynamoDB::Table"),
            "buckets": self.resources.names("AWS::S3::Bucket"),
            "queues": self.resources.names("AWS::SQS::Queue"),
            "event_buses": self.resources.names("AWS::Events::EventBus"),
            "routes": [f"{r.route_key} -> {r.function_id}" for r in self.gateway.router.routes],
            "stream_sources": [f"{s.spec.table_id} -> {s.spec.function_id}" for s in self.poller.sources]
            if self.poller
            else [],
            "env": self.resources.globals_env(),
            "resources": self.resources.to_dict(),
        }


def summary(state: dict[str, Any]) -> str:
    base = state["gateway_url"]
    lines = [
        f"Local stack ready ({state['template']}, stage {STAGE})",
        f"  gateway    {base}   ({len(state['routes'])} routes from the template)",
        f"  moto       {state['aws_endpoint']}   (AWS_ENDPOINT_URL)",
        f"  sandbox    {state['sandbox_url']}   (Twilio + Meta stand-in; GET /_sandbox/requests)",
        f"  user pool  {state['user_pool_id']}   client {state['user_pool_client_id']}",
    ]
    lines += [f"  table      {lid} = {name}" for lid, name in state["tables"].items()]
    lines += [f"  bucket     {lid} = {name}" for lid, name in state["buckets"].items()]
    lines += [f"  queue      {lid} = {url}" for lid, url in state["queues"].items()]
    lines += [f"  stream     {s}" for s in state["stream_sources"]]
    lines += [f"  route      {r}" for r in state["routes"]]
    lines += [f"  state      {state_path()}", "", "Try it:", *try_it(base), ""]
    lines += [*console_lines(state), "", "Ctrl-C stops everything."]
    return "\n".join(lines)


# The README's "Try it" values: the sample events in events/ are signed for them (local/tests/test_events.py).
QUICKSTART_TOKEN_REQUEST = '{"tenant_id":"acme","admin":true}'
QUICKSTART_CHANNELS = (
    '{"provider":"twilio","name":"Main","phone_number":"+14155238886",'
    '"account_sid":"AC0123456789abcdef0123456789abcdef","auth_token":"sample-auth-token-0123456789abcdef"}',
    '{"provider":"meta","name":"Meta","phone_number_id":"106540352242922","business_account_id":"102290129340398",'
    '"display_phone_number":"+15550783881","access_token":"local-meta-token","app_secret":"local-meta-app-secret",'
    '"verify_token":"local-verify-token"}',
)


def console_lines(state: dict[str, Any]) -> list[str]:
    demo = state.get("demo_login")
    if not demo:
        return []
    twilio, meta = (json.loads(channel) for channel in QUICKSTART_CHANNELS)
    return [
        f"Console: open {state['console_url']} and sign in as {demo['email']} / {demo['password']}"
        f" (tenant {demo['tenant_id']}, admin).",
        "Play the customer: connect a channel there (or with the curls above), then",
        f"  make say TO={twilio['phone_number']} TEXT='Hello!'   [FROM=+1555…] [MEDIA=photo.jpg]"
        f"   (TO={meta['phone_number_id']} for the Meta number)",
    ]


def try_it(base: str) -> list[str]:
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id_token\"])'"
    lines = [f"  TOKEN=$(curl -s -X POST {base}/_local/token -d {shlex.quote(QUICKSTART_TOKEN_REQUEST)} | {extract})"]
    lines += [
        f'  curl -s -X POST {base}/v1/channels -H "Authorization: Bearer $TOKEN" '
        f"-H 'content-type: application/json' -d {shlex.quote(channel)}"
        for channel in QUICKSTART_CHANNELS
    ]
    return [
        *lines,
        f'  curl -s {base}/v1/conversations -H "Authorization: Bearer $TOKEN"',
        "  make invoke EVENT=events/twilio_inbound.json   # a contact writes (events/README.md lists every sample)",
    ]


# ---------------------------------------------------------------------------------------------- main
def main() -> int:
    # Our own lines at INFO; libraries (botocore, pynamodb) only when something is wrong.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("local").setLevel(os.environ.get("LOCAL_LOG_LEVEL", "INFO"))
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    aws_actions.install_from_env()  # started by the tests: record what the functions call (tests/iam_coverage.py)

    stack = LocalStack(
        port=int(os.environ.get("PORT") or DEFAULT_PORT),
        function_concurrency=int(os.environ.get("LOCAL_FUNCTION_CONCURRENCY") or 1),
    )
    try:
        stack.start()
        print(summary(stack.state()), flush=True)
        while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    except OSError as exc:
        print(f"local stack failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
    print("Local stack stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
