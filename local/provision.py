"""Create the template's AWS resources against whatever endpoint boto3 points at (moto in-process or server).

Only resource types a function can *use* are created (tables, bucket, KMS key, Cognito, event bus, queues).
Everything else (functions, layers, log groups, policies, the API) gets a placeholder physical id so that
``!Ref``/``!GetAtt`` on it still resolve, exactly as they would after a deploy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any, cast

from local.intrinsics import NO_VALUE, Resolver, UnresolvableError, references
from local.template import Template

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass
class PhysicalResource:
    logical_id: str
    type: str
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)
    provisioned: bool = True


# --------------------------------------------------------------------------------------------- Resources
class Resources:
    """Physical ids of a provisioned template, and intrinsic resolution against them."""

    def __init__(
        self,
        template: Template,
        *,
        stage: str,
        parameters: Mapping[str, Any] | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self.template = template
        self.stage = stage
        self.region = region
        self.account_id = account_id
        self.parameters = _parameter_values(template, stage, parameters or {})
        self.physical: dict[str, PhysicalResource] = {}
        # Set last in every function's environment (the local stack's endpoints, developer overrides).
        self.env_overrides: dict[str, str] = {}
        self.resolver = Resolver(
            parameters=self.parameters,
            pseudo={
                "AWS::Region": region,
                "AWS::AccountId": account_id,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": f"local-{stage}",
                "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/local-{stage}/local",
                "AWS::NoValue": NO_VALUE,
            },
            conditions=template.conditions,
            mappings=template.mappings,
            ref=self.ref,
            get_att=self.get_att,
        )

    # ------------------------------------------------------------------------------------ lookups
    def resource(self, logical_id: str) -> PhysicalResource:
        if logical_id not in self.physical:
            if logical_id not in self.template.resources:
                raise UnresolvableError(f"unknown logical id {logical_id!r}")
            self.physical[logical_id] = self._placeholder(logical_id)
        return self.physical[logical_id]

    def ref(self, logical_id: str) -> str:
        return self.resource(logical_id).ref

    def get_att(self, logical_id: str, attribute: str) -> str:
        res = self.resource(logical_id)
        if attribute not in res.attributes:
            raise UnresolvableError(f"{logical_id} ({res.type}) has no attribute {attribute!r} locally")
        return res.attributes[attribute]

    def resolve(self, value: Any) -> Any:
        return self.resolver.resolve(value)

    def enabled(self, condition: str | None) -> bool:
        return condition is None or self.resolver.condition(condition)

    def names(self, resource_type: str) -> dict[str, str]:
        """Logical id → Ref value of every provisioned resource of a type (for printing and tests)."""
        return {lid: r.ref for lid, r in self.physical.items() if r.type == resource_type and r.provisioned}

    def first_of_type(self, resource_type: str) -> PhysicalResource:
        for res in self.physical.values():
            if res.type == resource_type and res.provisioned:
                return res
        raise LookupError(f"no {resource_type} in the template")

    # ------------------------------------------------------------------------------------ environment
    def function_env(self, logical_id: str) -> dict[str, str]:
        """The function's Globals + own Environment.Variables, resolved; AWS::NoValue drops a variable."""
        spec = self.template.function(logical_id)
        resolved = self.resolve(spec.environment)
        env = {name: self.resolver.resolve_str(value) for name, value in resolved.items()}
        return {**env, **self.env_overrides}

    def globals_env(self) -> dict[str, str]:
        """Variables every function shares: what a single-process local stack can put in ``os.environ``."""
        envs = [self.function_env(spec.logical_id) for spec in self.template.functions()]
        if not envs:
            variables = (self.template.globals_for("Function").get("Environment") or {}).get("Variables") or {}
            env = {k: self.resolver.resolve_str(v) for k, v in self.resolve(variables).items()}
            return {**env, **self.env_overrides}
        common = dict(envs[0])
        for env in envs[1:]:
            common = {k: v for k, v in common.items() if env.get(k) == v}
        return common

    # ------------------------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "region": self.region,
            "account_id": self.account_id,
            "parameters": self.parameters,
            "env_overrides": self.env_overrides,
            "physical": {
                lid: {"type": r.type, "ref": r.ref, "attributes": r.attributes, "provisioned": r.provisioned}
                for lid, r in self.physical.items()
            },
        }

    @classmethod
    def from_dict(cls, template: Template, data: Mapping[str, Any]) -> Resources:
        resources = cls(
            template,
            stage=data["stage"],
            parameters=data["parameters"],
            region=data["region"],
            account_id=data["account_id"],
        )
        resources.env_overrides = dict(data.get("env_overrides") or {})
        for lid, r in data["physical"].items():
            resources.physical[lid] = PhysicalResource(lid, r["type"], r["ref"], r["attributes"], r["provisioned"])
        return resources

    # ------------------------------------------------------------------------------------ placeholders
    def _placeholder(self, logical_id: str) -> PhysicalResource:
        resource = self.template.resources[logical_id]
        rtype = str(resource.get("Type"))
        props = resource.get("Properties") or {}
        region, account = self.region, self.account_id
        name = physical_name(self.stage, logical_id)
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            explicit = props.get("FunctionName")
            fname = self.resolver.resolve_str(explicit) if explicit else name
            arn = f"arn:aws:lambda:{region}:{account}:function:{fname}"
            return PhysicalResource(logical_id, rtype, fname, {"Arn": arn}, provisioned=False)
        if rtype in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            api_id = _short_id(self.stage, logical_id)
            endpoint = f"https://{api_id}.execute-api.{region}.amazonaws.com"
            return PhysicalResource(logical_id, rtype, api_id, {"ApiEndpoint": endpoint}, provisioned=False)
        if rtype == "AWS::Logs::LogGroup":
            explicit = props.get("LogGroupName")
            group = self.resolver.resolve_str(explicit) if explicit else name
            arn = f"arn:aws:logs:{region}:{account}:log-group:{group}:*"
            return PhysicalResource(logical_id, rtype, group, {"Arn": arn}, provisioned=False)
        if rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            arn = f"arn:aws:lambda:{region}:{account}:layer:{name}:1"
            return PhysicalResource(logical_id, rtype, arn, {"Arn": arn}, provisioned=False)
        if rtype.startswith("AWS::CloudFront::"):  # the console's CDN: nothing to create, ids for !GetAtt
            resource_id = "E" + _short_id(self.stage, logical_id).upper() + "LCL"
            attributes = {"Id": resource_id, "Arn": f"arn:aws:cloudfront::{account}:{logical_id}/{resource_id}"}
            if rtype == "AWS::CloudFront::Distribution":
                attributes["DomainName"] = f"d{_short_id(self.stage, logical_id)}.cloudfront.net"
            return PhysicalResource(logical_id, rtype, resource_id, attributes, provisioned=False)
        arn = f"arn:aws:local:{region}:{account}:{logical_id}"
        return PhysicalResource(logical_id, rtype, name, {"Arn": arn}, provisioned=False)


def physical_name(stage: str, logical_id: str) -> str:
    """Name for a resource the template leaves unnamed (CloudFormation would add a random suffix)."""
    return f"{stage}-{logical_id}"


def _short_id(stage: str, logical_id: str) -> str:
    # API ids are 10 lower-case alphanumerics; derive one deterministically so URLs are stable across runs.
    return hashlib.sha256(f"{stage}/{logical_id}".encode()).hexdigest()[:10]


def _parameter_values(template: Template, stage: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    values = template.parameter_defaults()
    if "Stage" in template.parameters:
        values["Stage"] = stage
    for name, value in overrides.items():
        if name not in template.parameters:
            raise KeyError(f"template has no parameter {name!r}")
        values[name] = value
    for name, spec in template.parameters.items():
        if name not in values:
            raise KeyError(f"parameter {name!r} has no default: pass it in parameters=")
        values[name] = _check_parameter(name, spec, values[name])
    return values


def _check_parameter(name: str, spec: Mapping[str, Any], value: Any) -> Any:
    if spec.get("Type") == "CommaDelimitedList" or str(spec.get("Type", "")).startswith("List<"):
        return value if isinstance(value, list) else [v.strip() for v in str(value).split(",") if v.strip()]
    allowed = spec.get("AllowedValues")
    if allowed is not None and str(value) not in [str(v) for v in allowed]:
        raise ValueError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, str(value)):
        raise ValueError(f"parameter {name}={value!r} does not match {pattern}")
    return value


# --------------------------------------------------------------------------------------------- creators
@dataclass
class _Context:
    client: Callable[[str], Any]
    resources: Resources

    def props(self, logical_id: str) -> dict[str, Any]:
        raw = self.resources.template.resources[logical_id].get("Properties") or {}
        resolved: dict[str, Any] = self.resources.resolve(raw)
        return resolved


Creator = Callable[[_Context, str], PhysicalResource]


def _create_table(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    ddb = ctx.client("dynamodb")
    name = props.get("TableName") or physical_name(ctx.resources.stage, logical_id)
    # Local tables are always on-demand: capacity settings would only slow moto down.
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = [_on_demand(i) for i in props["GlobalSecondaryIndexes"]]
    if props.get("LocalSecondaryIndexes"):
        params["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    view_type = (props.get("StreamSpecification") or {}).get("StreamViewType")
    if view_type:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    if (props.get("SSESpecification") or {}).get("SSEEnabled"):
        params["SSESpecification"] = {"Enabled": True}
    table = ddb.create_table(**params)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    return PhysicalResource(logical_id, "AWS::DynamoDB::Table", name, attributes)


def _on_demand(index: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in index.items() if k not in ("ProvisionedThroughput", "ContributorInsightsSpecification")}


def _create_bucket(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    s3 = ctx.client("s3")
    # Bucket names are global and lower-case only.
    name = props.get("BucketName") or physical_name(ctx.resources.stage, logical_id).lower()
    if ctx.resources.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ctx.resources.region})
    rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
    if rules:
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [_sse_rule(r) for r in rules]}
        )
    block = props.get("PublicAccessBlockConfiguration")
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    ownership = props.get("OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=ownership)
    versioning = props.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    region = ctx.resources.region
    attributes = {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
    }
    return PhysicalResource(logical_id, "AWS::S3::Bucket", name, attributes)


def _sse_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    # CloudFormation says ServerSideEncryptionByDefault where the S3 API says ApplyServerSideEncryptionByDefault.
    converted = {k: v for k, v in rule.items() if k != "ServerSideEncryptionByDefault"}
    if "ServerSideEncryptionByDefault" in rule:
        converted["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    return converted


def _create_kms_key(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    kms = ctx.client("kms")
    params: dict[str, Any] = {
        "Description": props.get("Description", ""),
        "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
    }
    if props.get("KeyPolicy"):
        params["Policy"] = json.dumps(props["KeyPolicy"])
    meta = kms.create_key(**params)["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    attributes = {"Arn": meta["Arn"], "KeyId": meta["KeyId"]}
    return PhysicalResource(logical_id, "AWS::KMS::Key", meta["KeyId"], attributes)


def _create_kms_alias(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return PhysicalResource(logical_id, "AWS::KMS::Alias", props["AliasName"])


_USER_POOL_KEYS = (
    "Policies",
    "AutoVerifiedAttributes",
    "AliasAttributes",
    "UsernameAttributes",
    "MfaConfiguration",
    "AdminCreateUserConfig",
    "Schema",
    "UsernameConfiguration",
    "AccountRecoverySetting",
    "UserPoolTags",
)


def _create_user_pool(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    name = props.get("UserPoolName") or physical_name(ctx.resources.stage, logical_id)
    params = {k: props[k] for k in _USER_POOL_KEYS if k in props}
    pool = ctx.client("cognito-idp").create_user_pool(PoolName=name, **params)["UserPool"]
    pool_id = pool["Id"]
    provider = f"cognito-idp.{ctx.resources.region}.amazonaws.com/{pool_id}"
    attributes = {
        "Arn": pool["Arn"],
        "UserPoolId": pool_id,
        "ProviderName": provider,
        "ProviderURL": f"https://{provider}",
    }
    return PhysicalResource(logical_id, "AWS::Cognito::UserPool", pool_id, attributes)


_USER_POOL_CLIENT_KEYS = (
    "GenerateSecret",
    "RefreshTokenValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
    "ExplicitAuthFlows",
    "SupportedIdentityProviders",
    "CallbackURLs",
    "LogoutURLs",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
)
# POST /_local/token signs users in with the admin password flow, and the console signs in with the user password
# flow (moto does not check SRP proofs; docs/console.md), so the local client must allow both.
LOCAL_AUTH_FLOWS = ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_PASSWORD_AUTH")


def _create_user_pool_client(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    params = {k: props[k] for k in _USER_POOL_CLIENT_KEYS if k in props}
    flows = list(params.get("ExplicitAuthFlows") or [])
    flows += [flow for flow in LOCAL_AUTH_FLOWS if flow not in flows]
    params["ExplicitAuthFlows"] = flows
    name = props.get("ClientName") or physical_name(ctx.resources.stage, logical_id)
    client = ctx.client("cognito-idp").create_user_pool_client(
        UserPoolId=props["UserPoolId"], ClientName=name, **params
    )["UserPoolClient"]
    attributes = {"ClientId": client["ClientId"], "Name": name, "UserPoolId": props["UserPoolId"]}
    return PhysicalResource(logical_id, "AWS::Cognito::UserPoolClient", client["ClientId"], attributes)


def _create_user_pool_group(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    params = {k: props[k] for k in ("Description", "Precedence", "RoleArn") if k in props}
    name = props.get("GroupName") or physical_name(ctx.resources.stage, logical_id)
    ctx.client("cognito-idp").create_group(UserPoolId=props["UserPoolId"], GroupName=name, **params)
    return PhysicalResource(logical_id, "AWS::Cognito::UserPoolGroup", name, {"UserPoolId": props["UserPoolId"]})


def _create_event_bus(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    name = props.get("Name") or physical_name(ctx.resources.stage, logical_id)
    arn = ctx.client("events").create_event_bus(Name=name)["EventBusArn"]
    return PhysicalResource(logical_id, "AWS::Events::EventBus", name, {"Arn": arn, "Name": name})


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)


def _create_queue(ctx: _Context, logical_id: str) -> PhysicalResource:
    props = ctx.props(logical_id)
    fifo = bool(props.get("FifoQueue"))
    name = props.get("QueueName") or physical_name(ctx.resources.stage, logical_id) + (".fifo" if fifo else "")
    attributes = {k: _attr_str(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
    if props.get("RedrivePolicy"):
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _attr_str(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


CREATORS: dict[str, Creator] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::KMS::Key": _create_kms_key,
    "AWS::KMS::Alias": _create_kms_alias,
    "AWS::Cognito::UserPool": _create_user_pool,
    "AWS::Cognito::UserPoolClient": _create_user_pool_client,
    "AWS::Cognito::UserPoolGroup": _create_user_pool_group,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::SQS::Queue": _create_queue,
}


# --------------------------------------------------------------------------------------------- provision
def provision(
    session_or_client_factory: Any,
    template: Template,
    stage: str = "local",
    *,
    parameters: Mapping[str, Any] | None = None,
    region: str = DEFAULT_REGION,
) -> Resources:
    """Create every usable resource of ``template``; returns their physical ids.

    ``session_or_client_factory`` is a boto3 ``Session`` or any ``callable(service_name) -> client``, so the
    same code provisions moto in-process (``mock_aws``) and the moto server (``AWS_ENDPOINT_URL``).
    """
    # One client per service: building a boto3 client costs tens of milliseconds.
    client = functools.cache(_client_factory(session_or_client_factory, region))
    resources = Resources(template, stage=stage, parameters=parameters, region=region)
    ctx = _Context(client=client, resources=resources)
    for logical_id in _creation_order(template, resources):
        creator = CREATORS[str(template.resources[logical_id]["Type"])]
        resources.physical[logical_id] = creator(ctx, logical_id)
    return resources


def _client_factory(source: Any, region: str) -> Callable[[str], Any]:
    if hasattr(source, "client"):
        return lambda service: source.client(service, region_name=region)
    if callable(source):
        return cast(Callable[[str], Any], source)
    raise TypeError("pass a boto3 Session or a callable(service_name) -> client")


def _creation_order(template: Template, resources: Resources) -> Iterable[str]:
    """Provisionable resources (condition true), dependencies first (a client needs its user pool)."""
    wanted = {
        lid
        for lid, res in template.resources.items()
        if res.get("Type") in CREATORS and resources.enabled(res.get("Condition"))
    }
    graph = {lid: _dependencies(template.resources[lid]) & wanted for lid in wanted}
    return TopologicalSorter(graph).static_order()


def _dependencies(resource: Mapping[str, Any]) -> set[str]:
    depends_on = resource.get("DependsOn") or []
    explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
    return references(resource.get("Properties") or {}) | explicit
