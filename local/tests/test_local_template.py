"""Reading template.yaml: short tags, functions, HttpApi routes and their authorizer, stream event sources."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from local.template import Template, load_yaml

SHORT_TAGS = """
A: !Ref Thing
B: !GetAtt Table.StreamArn
C: !Sub "arn:${AWS::Partition}:x:${Table.Arn}"
D: !Sub ["${x}-y", {x: !Ref Stage}]
E: !If [IsProd, !Ref Big, !Ref "AWS::NoValue"]
F: !Not [!Equals [!Ref Stage, prod]]
G: !Join ["", [a, !Ref Stage]]
H: !Select [0, !Split [",", "a,b"]]
I: !GetAtt [Table, Arn]
J: !Condition IsProd
K: !FindInMap [M, k1, k2]
L: 2010-09-09
"""


def test_short_tags_become_long_form_intrinsics() -> None:
    doc = load_yaml(SHORT_TAGS)

    assert doc["A"] == {"Ref": "Thing"}
    assert doc["B"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert doc["C"] == {"Fn::Sub": "arn:${AWS::Partition}:x:${Table.Arn}"}
    assert doc["D"] == {"Fn::Sub": ["${x}-y", {"x": {"Ref": "Stage"}}]}
    assert doc["E"] == {"Fn::If": ["IsProd", {"Ref": "Big"}, {"Ref": "AWS::NoValue"}]}
    assert doc["F"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "prod"]}]}
    assert doc["G"] == {"Fn::Join": ["", ["a", {"Ref": "Stage"}]]}
    assert doc["H"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert doc["I"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert doc["J"] == {"Condition": "IsProd"}
    assert doc["K"] == {"Fn::FindInMap": ["M", "k1", "k2"]}
    assert doc["L"] == "2010-09-09"  # CloudFormation has no date type


def test_functions_of_the_real_template(template: Template) -> None:
    functions = {f.logical_id: f for f in template.functions()}

    channels = functions["ChannelsApiFunction"]
    assert channels.name == "channels_api"
    assert channels.code_dir == template.root / "functions" / "channels_api"
    assert channels.handler == "app.lambda_handler"
    assert channels.layer_dirs == (template.root / "layers" / "common",)
    # Globals merged with the function's own variables
    assert channels.environment["CHANNELS_TABLE"] == {"Ref": "ChannelsTable"}
    assert channels.environment["POWERTOOLS_SERVICE_NAME"] == "channels_api"
    assert template.function("channels_api") is not None
    assert template.function("ChannelsApiFunction").name == "channels_api"


def test_unknown_function_names_the_known_ones(template: Template) -> None:
    with pytest.raises(KeyError, match="channels_api"):
        template.function("nope")


def test_http_routes_of_the_real_template(template: Template) -> None:
    routes = {r.route_key: r for r in template.http_routes()}

    assert routes["POST /v1/channels"].function_id == "ChannelsApiFunction"
    assert routes["GET /v1/conversations/{id}/messages"].function_id == "InboxApiFunction"
    for route in routes.values():
        if route.path.startswith("/v1/"):  # behind the API's DefaultAuthorizer
            assert route.authorizer is not None and route.authorizer.name == "CognitoJwt"
            assert route.authorizer.header_name == "authorization"
            assert route.authorizer.audience == [{"Ref": "UserPoolClient"}]
        else:  # webhooks: provider signatures are the authentication (Auth: {Authorizer: NONE})
            assert route.path.startswith("/webhooks/")
            assert route.authorizer is None


ROUTES_TEMPLATE = """
Globals:
  Function:
    Handler: app.handler
    Layers: [!Ref Layer]
    Environment: {Variables: {SHARED: one, OVERRIDDEN: global}}
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.X-Token
            JwtConfiguration: {issuer: https://issuer.example, audience: [aud1]}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Layers: [!Ref Layer]
      Environment: {Variables: {OVERRIDDEN: mine}}
      Events:
        Hook:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /webhooks/x, Method: post, Auth: {Authorizer: NONE}}
        Secure:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /v1/x
            Method: GET
            Auth: {AuthorizationScopes: [read]}
        Any:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/v1/{proxy+}", Method: ANY}
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
            BatchSize: 5
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"type": {"S": ["message"]}}}}'
            DestinationConfig:
              OnFailure: {Destination: !GetAtt Dlq.Arn}
  Table:
    Type: AWS::DynamoDB::Table
  Dlq:
    Type: AWS::SQS::Queue
"""


def test_route_auth_none_default_authorizer_and_scopes(write_template: Callable[..., Template]) -> None:
    template = write_template(ROUTES_TEMPLATE)
    routes = {r.event_name: r for r in template.http_routes()}

    assert routes["Hook"].route_key == "POST /webhooks/x"
    assert routes["Hook"].authorizer is None
    assert routes["Secure"].authorizer is not None
    assert routes["Secure"].authorizer.header_name == "x-token"
    assert routes["Secure"].scopes == ("read",)
    assert routes["Any"].method == "ANY"
    assert routes["Any"].api_id == "Api"


def test_globals_lists_are_additive_and_maps_merge(write_template: Callable[..., Template]) -> None:
    template = write_template(ROUTES_TEMPLATE)
    fn = template.function("Fn")

    assert fn.handler == "app.handler"
    assert fn.environment == {"SHARED": "one", "OVERRIDDEN": "mine"}
    assert fn.layer_dirs == (template.root / "layer",)  # listed in Globals and by the function: once


def test_stream_sources(write_template: Callable[..., Template]) -> None:
    (source,) = write_template(ROUTES_TEMPLATE).stream_sources()

    assert source.function_id == "Fn"
    assert source.table_id == "Table"
    assert source.starting_position == "LATEST"
    assert source.batch_size == 5
    assert source.bisect_on_error is True
    assert source.maximum_retry_attempts == 1
    assert source.report_batch_item_failures is True
    assert source.filter_patterns == ({"dynamodb": {"NewImage": {"type": {"S": ["message"]}}}},)
    assert source.on_failure_queue_id == "Dlq"


def test_real_template_has_no_stream_sources_yet_but_parses(template: Template) -> None:
    assert all(s.table_id in template.resources for s in template.stream_sources())
