"""The IAM coverage check (tests/iam_coverage.py) and its recorder (local/aws_actions.py).

- the comparison, on template.yaml and on copies with a planted mismatch (a grant taken away, one added);
- what each AWS operation needs (``needs``), as the service authorization references say;
- the recorder on real botocore calls against moto (PynamoDB's and boto3's clients, multipart upload threads,
  presigned URLs), attributed only to the function running;
- the plugin in pytest runs of its own: with two xdist workers over the whole (inner) suite, a call the policy
  lacks and grants nobody used fail the run; a partial run checks only the former.
"""

from __future__ import annotations

import copy
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import TEMPLATE_PATH
from local.aws_actions import (
    BUCKET,
    KEY,
    TABLE,
    Need,
    Recorder,
    Use,
    canonical_arn,
    install,
    needs,
    resource_arn,
)
from local.provision import Resources
from local.runtime import acting_as
from local.template import Template, load_template
from local.testing import provisioned_moto
from tests.iam_coverage import Grant, compare, policy_grants

ROOT = Path(__file__).resolve().parents[2]
PROCESSOR = "InboundProcessorFunction"
MESSAGES = canonical_arn(TABLE, "MessagesTable")
MEDIA = canonical_arn(BUCKET, "MediaBucket")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(TEMPLATE_PATH)


def using(grant: Grant) -> Use:
    """A use that only ``grant`` could allow: its wildcards filled in."""
    return Use(grant.function, grant.action.replace("*", "Item"), grant.resource.replace("*", "x"), "test")


def changed(template: Template, function: str, change: Any) -> Template:
    doc = copy.deepcopy(template.doc)
    change(doc["Resources"][function]["Properties"]["Policies"][0]["Statement"])
    return Template(path=template.path, doc=doc)


def on_table(statements: list[dict[str, Any]], table: str) -> dict[str, Any]:
    return next(s for s in statements if s["Resource"] == {"Fn::GetAtt": [table, "Arn"]})


# ---------------------------------------------------------------------------------------------- comparison
def test_template_yaml_policies_are_all_evaluated_and_name_template_resources(template: Template) -> None:
    grants, problems = policy_grants(template)

    assert problems == []
    assert {g.function for g in grants} == {f.logical_id for f in template.functions()}
    assert Grant(PROCESSOR, "dynamodb:DeleteItem", MESSAGES, "Policies[1] statement 1") in grants
    assert all(g.resource.startswith("arn:aws:") for g in grants)


def test_uses_of_every_grant_leave_nothing_missing_or_unused(template: Template) -> None:
    grants, _ = policy_grants(template)

    report = compare(template, [using(g) for g in grants])

    assert not report.failed, report.lines()


def test_the_processor_deleting_a_message_without_the_grant_fails_the_check(template: Template) -> None:
    """What the check would have said before the fix: the grant template.yaml lacked, named with the test."""
    delete = Use(PROCESSOR, "dynamodb:DeleteItem", MESSAGES, "tests/faults/test_processor_faults.py::test_x")
    without = changed(template, PROCESSOR,
                      lambda s: on_table(s, "MessagesTable")["Action"].remove("dynamodb:DeleteItem"))

    assert compare(template, [delete]).missing == []
    report = compare(without, [delete], check_unused=False)

    assert report.missing == [delete]
    assert report.lines() == [
        f"{PROCESSOR} needs dynamodb:DeleteItem on {MESSAGES}, which its Policies do not allow (first in "
        "tests/faults/test_processor_faults.py::test_x)"
    ]


def test_a_grant_on_another_resource_or_another_function_does_not_allow_the_use(template: Template) -> None:
    # The processor may delete from the idempotency table, and channels_api from the channels table: neither
    # lets the processor delete from the channels table.
    use = Use(PROCESSOR, "dynamodb:DeleteItem", canonical_arn(TABLE, "ChannelsTable"))

    assert compare(template, [use], check_unused=False).missing == [use]


def test_an_unused_grant_fails_a_whole_suite_run_only(template: Template) -> None:
    grants, _ = policy_grants(template)
    extra = {"Effect": "Allow", "Action": ["dynamodb:Scan"], "Resource": {"Fn::GetAtt": ["MessagesTable", "Arn"]}}
    wider = changed(template, "InboxApiFunction", lambda s: s.append(extra))
    uses = [using(g) for g in grants]

    report = compare(wider, uses)

    assert [g.key for g in report.unused] == [("InboxApiFunction", "dynamodb:Scan", MESSAGES)]
    assert "InboxApiFunction is granted dynamodb:Scan on " + MESSAGES in report.lines()[0]
    assert not compare(wider, uses, check_unused=False).failed


def test_the_allow_list_excuses_an_unused_grant_and_cannot_go_stale(template: Template) -> None:
    grants, _ = policy_grants(template)
    kept, *others = grants
    uses = [using(g) for g in others]

    assert not compare(template, uses, allowed_unused={kept.key: "needed on AWS only"}).failed
    stale = compare(template, [using(g) for g in grants], allowed_unused={kept.key: "needed on AWS only"})
    assert stale.problems == [f"ALLOWED_UNUSED names {kept.key}, which a test now uses: remove it from the list"]
    gone = (PROCESSOR, "dynamodb:Scan", MESSAGES)
    assert compare(template, [using(g) for g in grants], allowed_unused={gone: "r"}).problems == [
        f"ALLOWED_UNUSED names {gone}, which the template no longer grants (r)"
    ]


@pytest.mark.parametrize(("policies", "problem"), [
    ([{"DynamoDBCrudPolicy": {"TableName": {"Ref": "MessagesTable"}}}], "is not a statement list"),
    (["AmazonDynamoDBFullAccess"], "is not a statement list"),
    ([{"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}], "has Deny"),
    ([{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                      "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}], "has ['Condition']"),
    ([{"Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}]}], "has ['NotAction']"),
])
def test_what_the_check_cannot_evaluate_is_a_failure(template: Template, policies: list[Any], problem: str) -> None:
    doc = copy.deepcopy(template.doc)
    doc["Resources"]["InboxApiFunction"]["Properties"]["Policies"] = policies

    report = compare(Template(path=template.path, doc=doc), [], check_unused=False)

    assert report.failed
    assert any(p.startswith("InboxApiFunction: Policies[1]") and problem in p for p in report.problems)


def test_wildcards_match_like_iam(template: Template) -> None:
    index = Use("InboxApiFunction", "dynamodb:Query", canonical_arn(TABLE, "ConversationsTable") + "/index/by_activity")
    object_ = Use("InboxApiFunction", "s3:GetObject", MEDIA + "/acme/cv_1/msg_1/0")
    bucket = Use("InboxApiFunction", "s3:GetObject", MEDIA)  # `${Bucket.Arn}/*` is objects, not the bucket
    other_bucket = Use("InboxApiFunction", "s3:GetObject", MEDIA + "Copy/acme/0")

    report = compare(template, [index, object_, bucket, other_bucket], check_unused=False)

    assert report.missing == [bucket, other_bucket]


# ---------------------------------------------------------------------------------------------- needs
def test_a_transaction_needs_the_action_of_each_item_on_its_table() -> None:
    params = {"TransactItems": [
        {"Put": {"TableName": "t-messages", "Item": {}}},
        {"Update": {"TableName": "t-conversations", "Key": {}}},
        {"Delete": {"TableName": "t-channels", "Key": {}}},
        {"ConditionCheck": {"TableName": "t-channels", "Key": {}, "ConditionExpression": "x"}},
    ]}

    assert needs("dynamodb", "TransactWriteItems", params) == [
        Need("dynamodb:PutItem", TABLE, "t-messages"),
        Need("dynamodb:UpdateItem", TABLE, "t-conversations"),
        Need("dynamodb:DeleteItem", TABLE, "t-channels"),
        Need("dynamodb:ConditionCheckItem", TABLE, "t-channels"),
    ]
    assert needs("dynamodb", "TransactGetItems", {"TransactItems": [{"Get": {"TableName": "a", "Key": {}}}]}) == [
        Need("dynamodb:GetItem", TABLE, "a")
    ]


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("dynamodb", "Query", {"TableName": "t", "IndexName": "by_activity"}, [Need("dynamodb:Query", TABLE, "t",
                                                                               "/index/by_activity")]),
    ("dynamodb", "GetItem", {"TableName": "t", "Key": {}}, [Need("dynamodb:GetItem", TABLE, "t")]),
    ("dynamodb", "BatchWriteItem", {"RequestItems": {"a": [], "b": []}}, [Need("dynamodb:BatchWriteItem", TABLE, "a"),
                                                                         Need("dynamodb:BatchWriteItem", TABLE, "b")]),
    ("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "k/1"}, [Need("s3:PutObject", BUCKET, "b", "/k/1")]),
    ("s3", "UploadPart", {"Bucket": "b", "Key": "k", "PartNumber": 2}, [Need("s3:PutObject", BUCKET, "b", "/k")]),
    ("s3", "CompleteMultipartUpload", {"Bucket": "b", "Key": "k"}, [Need("s3:PutObject", BUCKET, "b", "/k")]),
    ("s3", "AbortMultipartUpload", {"Bucket": "b", "Key": "k"}, [Need("s3:AbortMultipartUpload", BUCKET, "b", "/k")]),
    ("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, [Need("s3:GetObject", BUCKET, "b", "/k")]),
    ("s3", "DeleteObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}, [Need("s3:DeleteObjectVersion", BUCKET, "b",
                                                                                "/k")]),
    ("s3", "ListObjectsV2", {"Bucket": "b"}, [Need("s3:ListBucket", BUCKET, "b")]),
    ("kms", "Decrypt", {"CiphertextBlob": b"x"}, [Need("kms:Decrypt", KEY, "")]),
    ("events", "PutEvents", {"Entries": [{"Detail": "{}"}, {"EventBusName": "bus"}, {"EventBusName": "bus"}]},
     [Need("events:PutEvents", "AWS::Events::EventBus", "default"), Need("events:PutEvents", "AWS::Events::EventBus",
                                                                         "bus")]),
    ("sqs", "SendMessageBatch", {"QueueUrl": "https://q/1/dlq", "Entries": []}, [Need("sqs:SendMessage",
                                                                                    "AWS::SQS::Queue",
                                                                                    "https://q/1/dlq")]),
    ("s3", "PutBucketPolicy", {"Bucket": "b"}, [Need("s3:PutBucketPolicy", "unknown", "s3:PutBucketPolicy")]),
    ("sts", "GetCallerIdentity", {}, [Need("sts:GetCallerIdentity", "unknown", "sts:GetCallerIdentity")]),
])
def test_what_an_operation_needs(service: str, operation: str, params: dict[str, Any], expected: list[Need]) -> None:
    assert needs(service, operation, params) == expected


def test_an_operation_the_recorder_does_not_know_is_never_granted(template: Template) -> None:
    [need] = needs("sts", "GetCallerIdentity", {})
    use = Use(PROCESSOR, need.action, resource_arn(need, None))

    assert use.resource == "unknown:sts:GetCallerIdentity"
    assert compare(template, [use], check_unused=False).missing == [use]


# ---------------------------------------------------------------------------------------------- recorder
@pytest.fixture
def copied_template(tmp_path: Path) -> Template:
    """template.yaml under another path: the suite's own recorder ignores it (its uses stay out of the run's)."""
    shutil.copy(TEMPLATE_PATH, tmp_path / "template.yaml")
    doc = load_template(TEMPLATE_PATH).doc
    return Template(path=tmp_path / "template.yaml", doc=doc)


@pytest.fixture
def stack(copied_template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[Resources]:
    with provisioned_moto(copied_template, monkeypatch) as resources:
        yield resources


@pytest.fixture
def recorder(copied_template: Template) -> Iterator[Recorder]:
    recorder = Recorder(template_path=copied_template.path)
    undo = install(recorder)
    yield recorder
    undo()


def recorded(recorder: Recorder) -> set[tuple[str, str, str]]:
    return {use.key for use in recorder.uses()}


def test_calls_are_recorded_for_the_function_running_and_setup_is_not(stack: Resources, recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    messages, channels = stack.ref("MessagesTable"), stack.ref("ChannelsTable")
    ddb.put_item(TableName=messages, Item={"pk": {"S": "seed"}, "sk": {"S": "seed"}})  # setup: nobody's

    with acting_as(PROCESSOR, stack):
        ddb.get_item(TableName=messages, Key={"pk": {"S": "seed"}, "sk": {"S": "seed"}})
        ddb.transact_write_items(TransactItems=[
            {"Delete": {"TableName": messages, "Key": {"pk": {"S": "seed"}, "sk": {"S": "seed"}}}},
            {"ConditionCheck": {"TableName": channels, "Key": {"pk": {"S": "x"}, "sk": {"S": "x"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
        ddb.query(TableName=stack.ref("ConversationsTable"), IndexName="by_activity",
                  KeyConditionExpression="gsi1pk = :t", ExpressionAttributeValues={":t": {"S": "TENANT#acme"}})

    assert recorded(recorder) == {
        (PROCESSOR, "dynamodb:GetItem", MESSAGES),
        (PROCESSOR, "dynamodb:DeleteItem", MESSAGES),
        (PROCESSOR, "dynamodb:ConditionCheckItem", canonical_arn(TABLE, "ChannelsTable")),
        (PROCESSOR, "dynamodb:Query", canonical_arn(TABLE, "ConversationsTable") + "/index/by_activity"),
    }
    assert {use.where for use in recorder.uses()} == {
        "tests/unit/test_iam_coverage.py::test_calls_are_recorded_for_the_function_running_and_setup_is_not"
    }


def test_pynamodb_calls_are_recorded(stack: Resources, recorder: Recorder) -> None:
    from gateway.bootstrap import ready
    from gateway.config import get_settings
    from gateway.store.models import ChannelModel

    get_settings.cache_clear()
    ready()
    with acting_as("ChannelsApiFunction", stack):
        assert ChannelModel.count("TENANT#acme") == 0  # a Query through PynamoDB's own botocore client

    assert recorded(recorder) == {("ChannelsApiFunction", "dynamodb:Query", canonical_arn(TABLE, "ChannelsTable"))}


def test_a_multipart_upload_on_transfer_threads_is_the_functions_put_object(
    stack: Resources, recorder: Recorder
) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = stack.ref("MediaBucket")
    config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=4)
    unseekable = io.BufferedReader(io.BytesIO(b"x" * (11 << 20)))  # type: ignore[arg-type]

    with acting_as(PROCESSOR, stack):
        s3.upload_fileobj(unseekable, bucket, "acme/cv/msg/0", Config=config)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "acme/cv/msg/0"})
        s3.delete_object(Bucket=bucket, Key="acme/cv/msg/0")

    assert url.startswith("https://")
    assert recorded(recorder) == {
        (PROCESSOR, "s3:PutObject", MEDIA + "/acme/cv/msg/0"),  # CreateMultipartUpload, 3 UploadPart, Complete
        (PROCESSOR, "s3:GetObject", MEDIA + "/acme/cv/msg/0"),  # the presigned URL, signed by the function's role
        (PROCESSOR, "s3:DeleteObject", MEDIA + "/acme/cv/msg/0"),
    }


def test_kms_keys_are_told_by_id_alias_or_the_ciphertext(stack: Resources, recorder: Recorder) -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    alias = stack.ref("CredentialsKeyAlias")
    key = canonical_arn(KEY, "CredentialsKey")

    with acting_as("ChannelsApiFunction", stack):
        blob = kms.encrypt(KeyId=alias, Plaintext=b"secret")["CiphertextBlob"]
        kms.decrypt(CiphertextBlob=blob)
        kms.encrypt(KeyId=stack.get_att("CredentialsKey", "Arn"), Plaintext=b"secret")

    assert recorded(recorder) == {("ChannelsApiFunction", "kms:Encrypt", key),
                                  ("ChannelsApiFunction", "kms:Decrypt", key)}


def test_a_resource_of_no_template_keeps_its_name_and_is_never_granted(
    stack: Resources, recorder: Recorder, copied_template: Template
) -> None:
    events = boto3.client("events", region_name="us-east-1")

    with acting_as(PROCESSOR, stack):
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}",
                                    "EventBusName": stack.ref("EventBus")}])
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])

    bus = "arn:aws:events:us-east-1:123456789012:event-bus/"
    assert recorded(recorder) == {(PROCESSOR, "events:PutEvents", bus + "EventBus"),
                                  (PROCESSOR, "events:PutEvents", bus + "default")}
    report = compare(copied_template, recorder.uses(), check_unused=False)
    assert [use.resource for use in report.missing] == [bus + "default"]


def test_a_stand_in_template_and_a_function_without_a_stack_are_not_recorded(
    stack: Resources, recorder: Recorder
) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")

    with acting_as(PROCESSOR, None):
        ddb.list_tables()

    assert recorder.uses() == []


# ---------------------------------------------------------------------------------------------- the plugin
INNER_TESTS = '''
import boto3
from local import TEMPLATE_PATH
from local.runtime import acting_as
from local.template import load_template
from local.testing import provisioned_moto


def test_granted(monkeypatch):
    with provisioned_moto(load_template(TEMPLATE_PATH), monkeypatch) as stack:
        with acting_as("InboundProcessorFunction", stack):
            boto3.client("dynamodb").get_item(TableName=stack.ref("MessagesTable"),
                                              Key={"pk": {"S": "a"}, "sk": {"S": "b"}})


def test_not_granted(monkeypatch):
    with provisioned_moto(load_template(TEMPLATE_PATH), monkeypatch) as stack:
        boto3.client("dynamodb").delete_item(TableName=stack.ref("ChannelsTable"),  # setup: not a function's
                                             Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
        with acting_as("InboundProcessorFunction", stack):
            boto3.client("dynamodb").delete_item(TableName=stack.ref("ChannelsTable"),
                                                 Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'layers' / 'common'}")
    pytester.makeini("[pytest]\ntestpaths = .\n")
    pytester.makeconftest('pytest_plugins = ["tests.iam_coverage"]')
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def test_the_plugin_fails_a_whole_run_for_a_missing_grant_and_for_unused_ones(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-p", "no:randomly")  # like make test

    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "IAM coverage: the functions' Policies in template.yaml do not match what they do (2 uses; unused grants "
        "checked):",
        "  - InboundProcessorFunction needs dynamodb:DeleteItem on arn:aws:dynamodb:us-east-1:123456789012:table/"
        "ChannelsTable, which its Policies do not allow (first in test_inner.py::test_not_granted)",
        "  - ChannelsApiFunction is granted dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/"
        "ChannelsTable (Policies?1? statement 1), which no test used: *",  # [1] would be a class
    ])
    assert "InboundProcessorFunction is granted dynamodb:GetItem on " + MESSAGES not in result.stdout.str()


def test_a_partial_run_checks_only_for_missing_grants(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-k", "test_granted")

    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "IAM coverage: 1 (function, action, resource) uses, all allowed by template.yaml; unused grants not "
        "checked: 1 test(s) deselected",
    ])
