"""Provisioning template.yaml into moto (in-process) and resolving the functions' environment against it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from local.intrinsics import UnresolvableError
from local.provision import Resources
from local.template import Template
from local.testing import provisioned_moto


@pytest.fixture
def resources(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[Resources]:
    with provisioned_moto(template, monkeypatch, parameters={"PublicBaseUrl": "http://127.0.0.1:3000"}) as res:
        yield res


def _table(resources: Resources, logical_id: str) -> dict[str, Any]:
    table: dict[str, Any] = boto3.client("dynamodb").describe_table(TableName=resources.ref(logical_id))["Table"]
    return table


def _keys(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["AttributeName"]: k["KeyType"] for k in schema}


def test_every_table_has_the_templates_keys(resources: Resources, template: Template) -> None:
    tables = template.resources_of_type("AWS::DynamoDB::Table")
    assert set(resources.names("AWS::DynamoDB::Table")) == set(tables)
    for logical_id, resource in tables.items():
        table = _table(resources, logical_id)
        assert _keys(table["KeySchema"]) == _keys(resource["Properties"]["KeySchema"])
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TableName"] == f"test-{logical_id}"


def test_conversations_table_has_the_activity_index(resources: Resources) -> None:
    (index,) = _table(resources, "ConversationsTable")["GlobalSecondaryIndexes"]

    assert index["IndexName"] == "by_activity"
    assert _keys(index["KeySchema"]) == {"gsi1pk": "HASH", "gsi1sk": "RANGE"}
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_messages_table_streams_old_and_new_images(resources: Resources) -> None:
    table = _table(resources, "MessagesTable")

    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert resources.get_att("MessagesTable", "StreamArn") == table["LatestStreamArn"]


@pytest.mark.parametrize("logical_id", ["IdempotencyTable", "MessagesTable"])  # messages: parked statuses
def test_tables_with_a_ttl_attribute_expire_items(resources: Resources, logical_id: str) -> None:
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=resources.ref(logical_id))

    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_media_bucket_is_encrypted_and_private(resources: Resources) -> None:
    s3 = boto3.client("s3")
    bucket = resources.ref("MediaBucket")

    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]

    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(block.values()) and len(block) == 4


def test_credentials_key_and_alias(resources: Resources) -> None:
    kms = boto3.client("kms")
    key_id = resources.ref("CredentialsKey")

    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}

    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    assert aliases["alias/whatsapp-gateway-test-credentials"] == key_id
    ciphertext = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant_id": "t"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"tenant_id": "t"})["Plaintext"] == b"x"


def test_user_pool_client_and_admin_group(resources: Resources) -> None:
    cognito = boto3.client("cognito-idp")
    pool_id = resources.ref("UserPool")

    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    client = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=resources.ref("UserPoolClient"))
    group = cognito.get_group(UserPoolId=pool_id, GroupName=resources.ref("AdminGroup"))["Group"]

    assert pool["Name"] == "whatsapp-gateway-test"
    assert "custom:tenant_id" in {a["Name"] for a in pool["SchemaAttributes"]}
    assert "ALLOW_ADMIN_USER_PASSWORD_AUTH" in client["UserPoolClient"]["ExplicitAuthFlows"]
    assert group["GroupName"] == "admin"


def test_event_bus_and_queue(resources: Resources) -> None:
    bus = boto3.client("events").describe_event_bus(Name=resources.ref("EventBus"))
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=resources.ref("DeadLetterQueue"), AttributeNames=["All"]
    )["Attributes"]

    assert bus["Name"] == "whatsapp-gateway-test"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert attributes["QueueArn"] == resources.get_att("DeadLetterQueue", "Arn")


def test_function_env_resolves_refs_to_physical_names(resources: Resources, template: Template) -> None:
    env = resources.function_env("ChannelsApiFunction")

    assert env["CHANNELS_TABLE"] == "test-ChannelsTable"
    assert env["MEDIA_BUCKET"] == "test-mediabucket"
    assert env["CREDENTIALS_KEY_ID"] == resources.ref("CredentialsKey")
    assert env["EVENT_BUS_NAME"] == "whatsapp-gateway-test"
    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"  # the override
    assert env["META_GRAPH_API_VERSION"] == template.parameters["MetaGraphApiVersion"]["Default"]
    assert env["STAGE"] == "test"
    assert env["POWERTOOLS_SERVICE_NAME"] == "channels_api"
    assert "POWERTOOLS_SERVICE_NAME" not in resources.globals_env()  # differs per function


def test_env_overrides_apply_to_every_function(resources: Resources) -> None:
    resources.env_overrides = {"TWILIO_API_BASE_URL": "http://127.0.0.1:9999"}

    assert resources.function_env("InboxApiFunction")["TWILIO_API_BASE_URL"] == "http://127.0.0.1:9999"
    assert resources.globals_env()["TWILIO_API_BASE_URL"] == "http://127.0.0.1:9999"


def test_authorizer_issuer_and_audience_resolve(resources: Resources, template: Template) -> None:
    authorizer = next(r.authorizer for r in template.http_routes() if r.authorizer)

    issuer = resources.resolve(authorizer.issuer)

    assert issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{resources.ref('UserPool')}"
    assert resources.resolve(authorizer.audience) == [resources.ref("UserPoolClient")]


def test_unprovisioned_resources_get_placeholders(resources: Resources) -> None:
    assert resources.get_att("ChannelsApiFunction", "Arn").endswith(":function:test-ChannelsApiFunction")
    assert len(resources.ref("HttpApi")) == 10
    with pytest.raises(UnresolvableError):
        resources.get_att("ChannelsTable", "NoSuchAttribute")


def test_state_round_trip(resources: Resources, template: Template) -> None:
    restored = Resources.from_dict(template, json.loads(json.dumps(resources.to_dict())))

    assert restored.function_env("ChannelsApiFunction") == resources.function_env("ChannelsApiFunction")


def test_parameters_are_validated(template: Template) -> None:
    with pytest.raises(ValueError, match="Stage"):
        Resources(template, stage="Not_Allowed!")
    with pytest.raises(KeyError):
        Resources(template, stage="x", parameters={"NoSuchParameter": "1"})


INTRINSICS_TEMPLATE = """
Parameters:
  Stage: {Type: String, Default: dev}
  Hosts: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Mappings:
  Sizes: {dev: {mb: "128"}}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "q-${Stage}", VisibilityTimeout: 30}
  ProdOnlyQueue:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Environment:
        Variables:
          QUEUE_ARN: !GetAtt Queue.Arn
          QUEUE_URL: !Ref Queue
          SUB: !Sub "${Queue.QueueName}/${AWS::Region}/${!Literal}"
          SUB_LIST: !Sub ["${a}-${Stage}", {a: !Select [1, !Ref Hosts]}]
          JOINED: !Join [",", !Ref Hosts]
          IF: !If [IsProd, big, small]
          GONE: !If [IsProd, x, !Ref "AWS::NoValue"]
          NOT_PROD: !If [NotProd, "yes", "no"]
          MAPPED: !FindInMap [Sizes, !Ref Stage, mb]
          SPLIT: !Select [0, !Split ["/", "left/right"]]
"""


def test_intrinsics_resolve_against_provisioned_names(
    write_template: Callable[..., Template], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = write_template(INTRINSICS_TEMPLATE)

    with provisioned_moto(template, monkeypatch, stage="dev") as resources:
        env = resources.function_env("Fn")
        queues = boto3.client("sqs").list_queues()["QueueUrls"]

    assert env["QUEUE_ARN"].endswith(":q-dev")
    assert env["QUEUE_URL"].endswith("/q-dev")
    assert env["SUB"] == "q-dev/us-east-1/${Literal}"
    assert env["SUB_LIST"] == "b-dev"
    assert env["JOINED"] == "a,b"
    assert env["IF"] == "small"
    assert "GONE" not in env
    assert env["NOT_PROD"] == "yes"
    assert env["MAPPED"] == "128"
    assert env["SPLIT"] == "left"
    assert [q.rsplit("/", 1)[1] for q in queues] == ["q-dev"]  # the IsProd queue is not created
