"""``python -m local.env_vars``: write events/env.json, the ``sam local invoke --env-vars`` file (``--check``: exit 1
when the committed file is stale).

SAM CLI hands a function only the variables template.yaml declares for it, and it cannot resolve a ``!Ref`` to a
resource (a table's name, the key's id) or know the local values of parameters. So every declared variable whose
template value is not a literal gets its value here, exactly as the local stack (``make dev`` on port 3000) gives
it: the template is provisioned into an in-process moto the way ``make dev`` provisions it, and each function's
environment resolved against it. Variables all functions share go under ``Parameters`` (SAM applies them to every
function), the others under the function's logical id, and every function has an entry. The KMS key's id is
random per run, so it is written as the alias template.yaml gives the key (KMS accepts an alias wherever a key id
is expected).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local import REPO_ROOT, TEMPLATE_PATH
from local.dev import DEFAULT_PORT, HOST, REGION, STAGE, env_overrides, local_parameters
from local.provision import Resources, provision
from local.template import Template, load_template

OUTPUT = REPO_ROOT / "events" / "env.json"
DEFAULT_BASE_URL = f"http://{HOST}:{DEFAULT_PORT}"


def declared_variables(template: Template, logical_id: str) -> dict[str, bool]:
    """Name → whether its template value needs resolving (an intrinsic), for every variable the function gets."""
    spec = template.function(logical_id)
    return {name: isinstance(value, dict) for name, value in spec.environment.items()}


def document(resources: Resources) -> dict[str, Any]:
    """The env-vars document for ``resources`` (a provisioned template)."""
    template = resources.template
    aliases = _key_aliases(resources)
    per_function: dict[str, dict[str, str]] = {}
    for spec in template.functions():
        env = resources.function_env(spec.logical_id)
        per_function[spec.logical_id] = {
            name: aliases.get(env[name], env[name])
            for name, needs_value in declared_variables(template, spec.logical_id).items()
            if needs_value and name in env
        }
    shared = dict(next(iter(per_function.values()), {}))
    for values in per_function.values():
        shared = {k: v for k, v in shared.items() if values.get(k) == v}
    doc: dict[str, Any] = {
        lid: {k: v for k, v in sorted(values.items()) if k not in shared} for lid, values in per_function.items()
    }
    doc["Parameters"] = dict(sorted(shared.items()))
    return doc


def _key_aliases(resources: Resources) -> dict[str, str]:
    """KMS key id → the name of an alias the template points at it."""
    aliases = {}
    for resource in resources.template.resources_of_type("AWS::KMS::Alias").values():
        props = resources.resolve(resource.get("Properties") or {})
        aliases[str(props["TargetKeyId"])] = str(props["AliasName"])
    return aliases


@contextlib.contextmanager
def _in_process_moto() -> Iterator[None]:
    """``mock_aws`` with fake credentials and none of the developer's overrides (the file is the defaults), the
    process environment restored afterwards."""
    from moto import mock_aws

    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE", "TWILIO_API_BASE_URL", "META_GRAPH_BASE_URL", "MEDIA_ALLOWED_HOSTS"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
                       "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"})
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_document(template: Template | None = None, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """The document for the local stack at ``base_url``, provisioned as ``make dev`` provisions it."""
    import boto3

    template = template or load_template(TEMPLATE_PATH)
    with _in_process_moto():
        resources = provision(boto3.session.Session(), template, STAGE, parameters=local_parameters(template, base_url),
                              region=REGION)
        # The sandbox URL only goes into variables the template does not declare (SAM would drop them anyway).
        resources.env_overrides = env_overrides(base_url, sandbox_url="")
        return document(resources)


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.env_vars", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="the local gateway's URL (PUBLIC_BASE_URL)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    output = args.output
    text = render(local_document(base_url=args.base_url))
    if args.check:
        if (output.read_text() if output.exists() else "") != text:
            print(f"{output} is stale: run `python -m local.env_vars`", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
