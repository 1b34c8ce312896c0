"""``python -m local.publish_console [--config-env dev | --stack NAME] [--region REGION]`` (``make deploy`` runs it
after ``sam deploy``; ``make publish-console`` alone): put the built console (``web/dist``) and its ``config.json``
into a deployed stack's console bucket and refresh CloudFront (docs/console.md "Deploy").

- The stack's outputs say where (``ConsoleBucketName``, ``ConsoleDistributionId``) and what the console talks to
  (``UserPoolId``, ``UserPoolClientId``, ``ApiUrl`` or the ``PublicBaseUrl`` parameter when it is set).
- Hashed ``assets/`` are uploaded first, cached for a year; ``index.html`` last, revalidated on every load; a page
  that a browser or CloudFront still holds keeps finding the assets it names (the previous build's are kept
  for a week).
- CloudFront's copies of ``/``, ``/index.html`` and ``/config.json`` are invalidated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import REPO_ROOT
from local.static import IMMUTABLE, REVALIDATE, content_type

DIST = REPO_ROOT / "web" / "dist"
SAMCONFIG = REPO_ROOT / "samconfig.toml"
KEEP_OLD_ASSETS = datetime.timedelta(days=7)
INVALIDATE = ["/", "/index.html", "/config.json"]


@dataclass(frozen=True)
class Target:
    bucket: str
    distribution_id: str
    config: dict[str, Any]


def stack_name(config_env: str, samconfig: Path = SAMCONFIG) -> str:
    """The stack ``sam deploy --config-env <env>`` deploys, as samconfig.toml names it."""
    config = tomllib.loads(samconfig.read_text())
    for section in (config.get(config_env, {}).get("deploy", {}), config.get(config_env, {}).get("global", {}),
                    config.get("default", {}).get("global", {})):
        name = (section.get("parameters") or {}).get("stack_name")
        if name:
            return str(name)
    raise SystemExit(f"samconfig.toml names no stack for config env {config_env!r}: pass --stack")


def target_of(stack: dict[str, Any], region: str) -> Target:
    """What to publish where, from ``DescribeStacks``' view of the stack."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters") or []}
    missing = [k for k in ("ConsoleBucketName", "ConsoleDistributionId", "UserPoolId", "UserPoolClientId", "ApiUrl")
               if not outputs.get(k)]
    if missing:
        name = stack.get("StackName")
        raise SystemExit(f"stack {name} has no output {', '.join(missing)}: deploy the template first")
    return Target(
        bucket=outputs["ConsoleBucketName"],
        distribution_id=outputs["ConsoleDistributionId"],
        config={
            "region": region,
            "user_pool_id": outputs["UserPoolId"],
            "client_id": outputs["UserPoolClientId"],
            "api_url": (parameters.get("PublicBaseUrl") or outputs["ApiUrl"]).rstrip("/"),
            "auth_flow": "USER_SRP_AUTH",
            "cognito_endpoint": f"https://cognito-idp.{region}.amazonaws.com/",
            "stage": parameters.get("Stage", ""),
        },
    )


def _files(dist: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(dist.rglob("*")):
        if path.is_file():
            yield path.relative_to(dist).as_posix(), path


def publish(
    s3: Any, cloudfront: Any, target: Target, dist: Path = DIST, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Upload ``dist`` and ``config.json``, drop what the build no longer has, invalidate the entry points."""
    if not (dist / "index.html").is_file():
        raise SystemExit(f"{dist}/index.html is missing: build the console first (make console)")
    files = dict(_files(dist))
    order = sorted(files, key=lambda key: key == "index.html")  # index.html last: its assets are there before it
    for key in order:
        cache = IMMUTABLE if key.startswith("assets/") else REVALIDATE
        s3.put_object(Bucket=target.bucket, Key=key, Body=files[key].read_bytes(),
                      ContentType=content_type(files[key]), CacheControl=cache)
    s3.put_object(Bucket=target.bucket, Key="config.json", Body=json.dumps(target.config, indent=2).encode(),
                  ContentType="application/json", CacheControl=REVALIDATE)
    now = now or datetime.datetime.now(datetime.UTC)
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket)
        for obj in page.get("Contents") or []
        if obj["Key"] not in files and obj["Key"] != "config.json"
        and (not obj["Key"].startswith("assets/") or now - obj["LastModified"] > KEEP_OLD_ASSETS)
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=target.bucket, Delete={"Objects": [{"Key": k} for k in stale[start:start + 1000]]})
    invalidation = cloudfront.create_invalidation(
        DistributionId=target.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": len(INVALIDATE), "Items": INVALIDATE},
                           "CallerReference": f"publish-console-{time.time_ns()}"},
    )["Invalidation"]["Id"]
    return {"uploaded": len(files) + 1, "deleted": stale, "invalidation": invalidation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.publish_console", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config-env", default="dev", help="samconfig.toml environment (default dev)")
    which.add_argument("--stack", help="stack name (instead of samconfig.toml's)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--dist", type=Path, default=DIST, help="the built console (default web/dist)")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    name = args.stack or stack_name(args.config_env)
    stack = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    target = target_of(stack, session.region_name)
    result = publish(session.client("s3"), session.client("cloudfront"), target, args.dist)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    print(f"Published the console to s3://{target.bucket} ({result['uploaded']} files, {len(result['deleted'])} "
          f"removed), CloudFront invalidation {result['invalidation']}.")
    print(f"Open {outputs.get('ConsoleUrl', '(ConsoleUrl output)')} and sign in with a user of pool "
          f"{target.config['user_pool_id']} (README: creating users).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
