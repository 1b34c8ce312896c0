"""``make deploy``'s console step (local/publish_console.py) against moto: the template's console bucket gets the
build with the right content types and cache headers, config.json from the stack's outputs, stale files go, old
assets stay a week, and CloudFront's entry points are invalidated."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws_actions import Recorder, install
from local.provision import Resources
from local.publish_console import Target, publish, stack_name, target_of

STACK = {
    "StackName": "whatsapp-gateway-dev",
    "Outputs": [
        {"OutputKey": "ConsoleBucketName", "OutputValue": "console-bucket"},
        {"OutputKey": "ConsoleDistributionId", "OutputValue": "E123"},
        {"OutputKey": "UserPoolId", "OutputValue": "eu-west-1_abc"},
        {"OutputKey": "UserPoolClientId", "OutputValue": "client123"},
        {"OutputKey": "ApiUrl", "OutputValue": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com"},
    ],
    "Parameters": [{"ParameterKey": "Stage", "ParameterValue": "dev"},
                   {"ParameterKey": "PublicBaseUrl", "ParameterValue": ""}],
}


def test_config_comes_from_the_stack() -> None:
    target = target_of(STACK, "eu-west-1")

    assert (target.bucket, target.distribution_id) == ("console-bucket", "E123")
    assert target.config == {
        "region": "eu-west-1",
        "user_pool_id": "eu-west-1_abc",
        "client_id": "client123",
        "api_url": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com",
        "auth_flow": "USER_SRP_AUTH",
        "cognito_endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "stage": "dev",
    }


def test_public_base_url_wins_over_the_execute_api_url() -> None:
    stack = {**STACK, "Parameters": [{"ParameterKey": "PublicBaseUrl", "ParameterValue": "https://wa.acme.example/"}]}

    assert target_of(stack, "eu-west-1").config["api_url"] == "https://wa.acme.example"


def test_a_stack_without_the_console_is_refused() -> None:
    with pytest.raises(SystemExit, match="ConsoleBucketName"):
        target_of({**STACK, "Outputs": STACK["Outputs"][2:]}, "eu-west-1")


def test_stack_name_comes_from_samconfig() -> None:
    assert stack_name("dev") == "whatsapp-gateway-dev"
    assert stack_name("prod") == "whatsapp-gateway-prod"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    (tmp_path / "assets" / "index-new.js").write_text("1")
    return tmp_path


def _distribution(cloudfront: Any, bucket: str) -> str:
    """A CloudFront distribution in moto in front of ``bucket`` (the template's is not provisioned locally)."""
    return str(cloudfront.create_distribution(DistributionConfig={
        "CallerReference": "t", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": f"{bucket}.s3.amazonaws.com",
                                               "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https"},
    })["Distribution"]["Id"])


def objects(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or []]
    return {k: s3.get_object(Bucket=bucket, Key=k) for k in keys}


def test_publish_uploads_the_build_and_config(aws: Resources, dist: Path) -> None:
    s3, cloudfront = boto3.client("s3"), boto3.client("cloudfront")
    bucket = aws.ref("ConsoleBucket")
    distribution = _distribution(cloudfront, bucket)
    target = Target(bucket, distribution, target_of(STACK, "us-east-1").config)
    s3.put_object(Bucket=bucket, Key="assets/index-old.js", Body=b"0")
    s3.put_object(Bucket=bucket, Key="old-page.html", Body=b"<html>")

    result = publish(s3, cloudfront, target, dist)

    stored = objects(s3, bucket)
    assert set(stored) == {"index.html", "favicon.svg", "assets/index-new.js", "assets/index-old.js", "config.json"}
    assert (stored["index.html"]["ContentType"], stored["index.html"]["CacheControl"]) == (
        "text/html; charset=utf-8", "no-cache")
    assert stored["assets/index-new.js"]["ContentType"] == "text/javascript; charset=utf-8"
    assert stored["assets/index-new.js"]["CacheControl"] == "public, max-age=31536000, immutable"
    assert json.loads(stored["config.json"]["Body"].read()) == target.config
    assert stored["config.json"]["CacheControl"] == "no-cache"
    assert result["deleted"] == ["old-page.html"]
    invalidation = cloudfront.get_invalidation(DistributionId=distribution, Id=result["invalidation"])["Invalidation"]
    assert sorted(invalidation["InvalidationBatch"]["Paths"]["Items"]) == ["/", "/config.json", "/index.html"]

    a_week_later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=8)
    again = publish(s3, cloudfront, target, dist, now=a_week_later)

    assert again["deleted"] == ["assets/index-old.js"]


def test_publish_refuses_an_unbuilt_console(aws: Resources, tmp_path: Path) -> None:
    target = Target(aws.ref("ConsoleBucket"), "E1", {})

    with pytest.raises(SystemExit, match="build the console"):
        publish(boto3.client("s3"), boto3.client("cloudfront"), target, tmp_path)


def test_publishing_is_no_function_s_doing(aws: Resources, dist: Path) -> None:
    """The operator's credentials publish the console (docs/decisions.md D27): the IAM coverage check
    (tests/iam_coverage.py) must attribute none of these S3 and CloudFront calls to a function's role."""
    s3, cloudfront = boto3.client("s3"), boto3.client("cloudfront")
    recorder = Recorder()  # the repository's template, as the suite's own recorder
    undo = install(recorder)
    try:
        publish(s3, cloudfront, Target(aws.ref("ConsoleBucket"), _distribution(cloudfront, aws.ref("ConsoleBucket")),
                                       target_of(STACK, "us-east-1").config), dist)
    finally:
        undo()

    assert objects(s3, aws.ref("ConsoleBucket"))  # it did publish
    assert recorder.uses() == []
