"""template.yaml against the security rules of DESIGN §5, the alarms operators rely on (docs/operations.md), and the
web console's delivery (docs/console.md: a private bucket read only by its CloudFront distribution).

Each rule is a function ``doc -> [violation]`` over the template as ``local.template`` reads it (short tags in
their long form, nothing resolved). The real template must give no violation; a mutated copy with one planted
violation must give at least one from the rule that guards it, so a rule that silently stopped checking fails.

Accepted exceptions, each named with its reason:
- the KMS key policy's statement for the account root (``kms:*`` on ``*``): a key policy is attached to its key
  (``*`` means this key) and the account-root statement is what lets IAM policies grant access at all;
- actions AWS does not scope to resources (X-Ray segments) may use ``Resource: "*"`` (none used today);
- the bucket policy's ``Principal: "*"`` in its Deny-insecure-transport statement (it only takes rights away);
- log groups use CloudWatch Logs' default encryption;
- SAM adds AWSLambdaBasicExecutionRole to every function's role: logs for its own log group, not in the text.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local import TEMPLATE_PATH
from local.template import load_template

Doc = dict[str, Any]
Rule = Callable[[Doc], list[str]]

NAMESPACE = "WhatsAppGateway"  # POWERTOOLS_METRICS_NAMESPACE in Globals
# Actions that AWS does not scope to a resource: "*" is the only possible Resource for them.
ACTIONS_WITHOUT_RESOURCES = frozenset({
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
})
# (resource, statement Sid) → why it may use wildcards.
IAM_EXCEPTIONS = {
    ("CredentialsKey", "AccountAdministers"): "key policy: the account root, so that IAM policies can grant access",
}
# Every resource type has a rule below, or a reason it needs none; a new type must be looked at.
REVIEWED_TYPES = {
    "AWS::Cognito::UserPool": "no data at rest beyond users (encrypted by Cognito)",
    "AWS::Cognito::UserPoolClient": "no secret (GenerateSecret: false)",
    "AWS::Cognito::UserPoolGroup": "membership only",
    "AWS::Serverless::HttpApi": "JWT authorizer by default; webhooks opt out, check signatures, are throttled",
    "AWS::Serverless::LayerVersion": "code",
    "AWS::Serverless::Function": "policies checked by check_iam",
    "AWS::Logs::LogGroup": "default CloudWatch Logs encryption",
    "AWS::DynamoDB::Table": "check_encryption",
    "AWS::S3::Bucket": "check_public_access, check_encryption",
    "AWS::S3::BucketPolicy": "check_public_access",
    "AWS::KMS::Key": "check_iam (key policy), rotation in check_encryption",
    "AWS::KMS::Alias": "a name",
    "AWS::Events::EventBus": "no resource policy: only this account's principals may put events",
    "AWS::SQS::Queue": "check_encryption, check_dead_letter_queue",
    "AWS::CloudWatch::Alarm": "check_alarms",
    "AWS::CloudWatch::Dashboard": "check_alarms",
    "AWS::IAM::Role": "check_iam",
    "AWS::IAM::Policy": "check_iam",
    "AWS::IAM::ManagedPolicy": "check_iam",
    "AWS::CloudFront::Distribution": "check_console_cdn",
    "AWS::CloudFront::OriginAccessControl": "check_console_cdn",
    "AWS::CloudFront::ResponseHeadersPolicy": "check_console_cdn",
}
CLOUDFRONT_PRINCIPAL = {"Service": "cloudfront.amazonaws.com"}
# What a CSP for the console must say (the rest may grow with the console).
CSP_DIRECTIVES = ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'")


@pytest.fixture(scope="module")
def doc() -> Doc:
    return load_template(TEMPLATE_PATH).doc


# ------------------------------------------------------------------------------------------------ helpers
def resources(doc: Doc, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in (doc.get("Resources") or {}).items():
        if not types or resource.get("Type") in types:
            yield logical_id, resource


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def logical_id_of(value: Any) -> str | None:
    """``!Ref X`` / ``!GetAtt X.Attr`` → ``X``."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def names_resource(doc: Doc, value: Any) -> bool:
    """Whether a policy Resource names a resource of this template (or a fully written ARN): ``*`` may only
    follow a named resource (``${Bucket.Arn}/*``, ``${Table.Arn}/index/*``), never stand for one."""
    template_ids = set(doc.get("Resources") or {})
    if isinstance(value, str):
        return "*" not in value
    if not isinstance(value, dict):
        return False
    if "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return all(names_resource(doc, branch) for branch in (yes, no) if branch != {"Ref": "AWS::NoValue"})
    if "Ref" in value or "Fn::GetAtt" in value:
        return logical_id_of(value) in template_ids
    if "Fn::Sub" in value:
        text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
        first_ref = next(
            (m for m in re.finditer(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}", text) if m[1] in template_ids),
            None,
        )
        return first_ref is not None and "*" not in text[: first_ref.start()]
    return False


def policy_statements(doc: Doc) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) for function policies, IAM policies and resource policies alike."""
    for logical_id, resource in resources(doc):
        p = props(resource)
        documents: list[Any] = []
        rtype = resource.get("Type")
        if rtype == "AWS::Serverless::Function":
            documents += [policy for policy in as_list(p.get("Policies") or []) if isinstance(policy, dict)]
        elif rtype == "AWS::IAM::Role":
            documents += [policy.get("PolicyDocument") or {} for policy in p.get("Policies") or []]
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy"):
            documents.append(p.get("PolicyDocument") or {})
        elif rtype == "AWS::KMS::Key":
            documents.append(p.get("KeyPolicy") or {})
        for document in documents:
            for statement in as_list(document.get("Statement") or []):
                yield logical_id, statement


def is_deny_insecure_transport(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    return statement.get("Effect") == "Deny" and str(
        (condition.get("Bool") or {}).get("aws:SecureTransport")
    ).lower() == "false"


def principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


def function_routes(resource: dict[str, Any]) -> list[str]:
    return [
        str(props(event).get("Path"))
        for event in (props(resource).get("Events") or {}).values()
        if event.get("Type") == "HttpApi"
    ]


def webhook_functions(doc: Doc) -> dict[str, dict[str, Any]]:
    return {
        lid: res
        for lid, res in resources(doc, "AWS::Serverless::Function")
        if any(path.startswith("/webhooks") for path in function_routes(res))
    }


def service_name(resource: dict[str, Any]) -> str:
    return str(((props(resource).get("Environment") or {}).get("Variables") or {})["POWERTOOLS_SERVICE_NAME"])


def code_of(resource: dict[str, Any]) -> str:
    return (TEMPLATE_PATH.parent / Path(str(props(resource)["CodeUri"])) / "app.py").read_text()


def layer_code() -> str:
    return "\n".join(p.read_text() for p in sorted((TEMPLATE_PATH.parent / "layers" / "common").rglob("*.py")))


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, {dimension: value}) of a plain or a metric-math alarm."""
    p = props(alarm)
    if "MetricName" in p:
        dims = {d["Name"]: d["Value"] for d in p.get("Dimensions") or []}
        return [(p.get("Namespace", ""), p["MetricName"], dims)]
    found = []
    for query in p.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric")
        if metric:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}
            found.append((metric.get("Namespace", ""), metric["MetricName"], dims))
    return found


# ------------------------------------------------------------------------------------------------ rules
def check_reviewed_types(doc: Doc) -> list[str]:
    return [
        f"{lid}: resource type {res.get('Type')} has no security rule here yet; add one to this test"
        for lid, res in resources(doc)
        if res.get("Type") not in REVIEWED_TYPES
    ]


def check_public_access(doc: Doc) -> list[str]:
    problems = []
    policies = {logical_id_of(props(p).get("Bucket")): p for _, p in resources(doc, "AWS::S3::BucketPolicy")}
    for lid, bucket in resources(doc, "AWS::S3::Bucket"):
        p = props(bucket)
        block = p.get("PublicAccessBlockConfiguration") or {}
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"{lid}: PublicAccessBlockConfiguration.{flag} is not true")
        if p.get("AccessControl") not in (None, "Private"):
            problems.append(f"{lid}: public ACL {p['AccessControl']}")
        rules = (p.get("OwnershipControls") or {}).get("Rules") or []
        if not any(rule.get("ObjectOwnership") == "BucketOwnerEnforced" for rule in rules):
            problems.append(f"{lid}: ACLs not disabled (OwnershipControls BucketOwnerEnforced)")
        if "WebsiteConfiguration" in p:
            problems.append(f"{lid}: website hosting")
        policy = policies.get(lid)
        statements = as_list((props(policy).get("PolicyDocument") or {}).get("Statement") or []) if policy else []
        if not any(is_deny_insecure_transport(s) for s in statements):
            problems.append(f"{lid}: no bucket policy statement denying insecure transport")
    for owner, statement in policy_statements(doc):
        if principal_is_everyone(statement.get("Principal")) and not is_deny_insecure_transport(statement):
            problems.append(f"{owner}: statement {statement.get('Sid', '?')} grants to every principal ('*')")
    return problems


def check_encryption(doc: Doc) -> list[str]:
    problems = []
    for lid, table in resources(doc, "AWS::DynamoDB::Table"):
        if (props(table).get("SSESpecification") or {}).get("SSEEnabled") is not True:
            problems.append(f"{lid}: DynamoDB table without SSESpecification.SSEEnabled: true")
    for lid, bucket in resources(doc, "AWS::S3::Bucket"):
        config = (props(bucket).get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
        algorithms = {(rule.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for rule in config}
        if not algorithms or not algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}:
            problems.append(f"{lid}: S3 bucket without default encryption")
    for lid, queue in resources(doc, "AWS::SQS::Queue"):
        p = props(queue)
        if p.get("SqsManagedSseEnabled") is not True and not p.get("KmsMasterKeyId"):
            problems.append(f"{lid}: SQS queue without SSE (SqsManagedSseEnabled or KmsMasterKeyId)")
    for lid, topic in resources(doc, "AWS::SNS::Topic"):
        if not props(topic).get("KmsMasterKeyId"):
            problems.append(f"{lid}: SNS topic without KmsMasterKeyId")
    for lid, key in resources(doc, "AWS::KMS::Key"):
        if props(key).get("EnableKeyRotation") is not True:
            problems.append(f"{lid}: KMS key without automatic rotation")
    return problems


def check_iam(doc: Doc) -> list[str]:
    problems = []
    for lid, function in resources(doc, "AWS::Serverless::Function"):
        p = props(function)
        if "Role" in p:
            problems.append(f"{lid}: an external Role cannot be checked here; use inline Policies statements")
        for policy in as_list(p.get("Policies") or []):
            if not isinstance(policy, dict) or set(policy) != {"Statement"}:
                problems.append(f"{lid}: policy {policy!r} is not an inline statement list (managed policies and SAM"
                                " policy templates grant more than the function uses)")
            elif not policy["Statement"]:
                problems.append(f"{lid}: empty policy statement list")
    for lid, role in resources(doc, "AWS::IAM::Role"):
        if props(role).get("ManagedPolicyArns"):
            problems.append(f"{lid}: managed policies on a role (not least privilege)")
    for owner, statement in policy_statements(doc):
        sid = statement.get("Sid", "?")
        if (owner, sid) in IAM_EXCEPTIONS or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{owner}: statement {sid} allows with NotAction/NotResource")
        actions = [str(a) for a in as_list(statement.get("Action") or [])]
        if not actions:
            problems.append(f"{owner}: statement {sid} has no Action")
        problems += [f"{owner}: wildcard action {a!r}" for a in actions if "*" in a]
        if "Resource" not in statement:
            problems.append(f"{owner}: statement {sid} ({', '.join(actions)}) names no Resource")
        for resource in as_list(statement.get("Resource") or []):
            if resource == "*" and actions and set(actions) <= ACTIONS_WITHOUT_RESOURCES:
                continue
            if not names_resource(doc, resource):
                problems.append(f"{owner}: {', '.join(actions)} on {resource!r}, not on a named resource")
    return problems


def check_dead_letter_queue(doc: Doc) -> list[str]:
    problems = []
    queues = dict(resources(doc, "AWS::SQS::Queue"))
    stream_events = [
        (lid, name, props(event))
        for lid, function in resources(doc, "AWS::Serverless::Function")
        for name, event in (props(function).get("Events") or {}).items()
        if event.get("Type") in ("DynamoDB", "Kinesis")
    ]
    if not stream_events:
        problems.append("no stream event source (the inbound processor) to dead-letter")
    for lid, name, event in stream_events:
        on_failure = (event.get("DestinationConfig") or {}).get("OnFailure") or {}
        queue = logical_id_of(on_failure.get("Destination"))
        if on_failure.get("Type") != "SQS" or queue not in queues:
            problems.append(f"{lid}.{name}: no OnFailure destination on an SQS queue of this template")
            continue
        if not isinstance(event.get("MaximumRetryAttempts"), int):
            problems.append(f"{lid}.{name}: MaximumRetryAttempts unset (retries until the record expires)")
        granted = [
            statement
            for owner, statement in policy_statements(doc)
            if owner == lid and "sqs:SendMessage" in as_list(statement.get("Action"))
            and any(logical_id_of(r) == queue for r in as_list(statement.get("Resource")))
        ]
        if not granted:
            problems.append(f"{lid}: may not sqs:SendMessage to its dead-letter queue {queue}")
        if (props(queues[queue]).get("MessageRetentionPeriod") or 0) < 4 * 24 * 3600:
            problems.append(f"{queue}: keeps dead-lettered batches less than 4 days")
    return problems


def check_alarms(doc: Doc) -> list[str]:
    problems = []
    alarms = dict(resources(doc, "AWS::CloudWatch::Alarm"))
    watched = [(lid, metric) for lid, alarm in alarms.items() for metric in alarm_metrics(alarm)]

    def watched_by(namespace: str, name: str, dims: dict[str, Any]) -> list[str]:
        return [lid for lid, (ns, n, d) in watched if (ns, n) == (namespace, name) and d == dims]

    # Dead-letter queue depth > 0.
    for _, queue_ref in ((lid, {"Fn::GetAtt": [lid, "QueueName"]}) for lid in _dead_letter_queues(doc)):
        dlq_alarms = watched_by("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue_ref})
        if not any(
            props(alarms[a]).get("Threshold") == 0 and props(alarms[a]).get("ComparisonOperator") ==
            "GreaterThanThreshold" for a in dlq_alarms
        ):
            problems.append(f"no alarm on {queue_ref['Fn::GetAtt'][0]} ApproximateNumberOfMessagesVisible > 0")
    # Webhook 5xx (answered by the handler, counted by its *Failed metric; or a crash: Lambda Errors) and
    # signature failures, for every webhook function; the metric names must be the ones the code emits.
    for lid, function in webhook_functions(doc).items():
        service, code = service_name(function), code_of(function)
        if not watched_by("AWS/Lambda", "Errors", {"FunctionName": {"Ref": lid}}):
            problems.append(f"no alarm on {lid}'s Lambda Errors")
        failed = [n for _, (ns, n, d) in watched if ns == NAMESPACE and d == {"service": service}
                  and n.endswith("Failed")]
        if not failed:
            problems.append(f"no alarm on {lid}'s 5xx metric (namespace {NAMESPACE}, service={service}, *Failed)")
        if not watched_by(NAMESPACE, "InvalidSignature", {"service": service}):
            problems.append(f"no alarm on {lid}'s InvalidSignature metric (service={service})")
        for _, (ns, name, dims) in watched:
            emitted = f'"{name}"' in code or f'name="{name}"' in layer_code()  # by the handler, or for it by the layer
            if ns == NAMESPACE and dims == {"service": service} and not emitted:
                problems.append(f"an alarm watches {name} of {service}, which {lid}'s code never emits")
    # An outcome a provider gave but DynamoDB did not take (metrics named *NotRecorded in the layer) pages someone:
    # each is watched under the service of a function that exists.
    services = {service_name(f) for _, f in resources(doc, "AWS::Serverless::Function")}
    for name in sorted(set(re.findall(r'name="(\w+NotRecorded)"', layer_code()))):
        dims = [d for _, (ns, n, d) in watched if (ns, n) == (NAMESPACE, name)]
        if not any(d.get("service") in services for d in dims):
            problems.append(f"no alarm on {name}, which the layer emits when an outcome is not recorded")
    for lid, alarm in alarms.items():
        p = props(alarm)
        expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        if p.get("AlarmActions") != expected:
            problems.append(f"{lid}: AlarmActions must notify AlarmTopicArn when it is set (HasAlarmTopic)")
        if p.get("TreatMissingData") != "notBreaching":
            problems.append(f"{lid}: TreatMissingData should be notBreaching (no traffic is not an incident)")
    dashboards = [props(d).get("DashboardBody") for _, d in resources(doc, "AWS::CloudWatch::Dashboard")]
    if not dashboards:
        problems.append("no CloudWatch dashboard")
    for body in dashboards:
        text = body.get("Fn::Sub") if isinstance(body, dict) else body
        try:
            widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", str(text)))["widgets"]
        except (ValueError, KeyError, TypeError) as error:
            problems.append(f"dashboard body is not a JSON document with widgets: {error}")
            continue
        if not widgets:
            problems.append("dashboard has no widgets")
        problems += [f"dashboard does not show alarm {lid}" for lid in alarms if f"${{{lid}.Arn}}" not in str(text)]
        for queue in _dead_letter_queues(doc):
            if f"${{{queue}.QueueName}}" not in str(text):
                problems.append(f"dashboard does not show the depth of {queue}")
    return problems


def check_console_cdn(doc: Doc) -> list[str]:
    """Each distribution reads S3 only through origin access control (no public bucket, no legacy OAI), over
    HTTPS only, with security headers; each bucket policy lets CloudFront in only for its own distribution (the
    service principal alone would let any account's distribution read it); client routes fall back to index.html."""
    problems = []
    buckets = {lid for lid, _ in resources(doc, "AWS::S3::Bucket")}
    controls = dict(resources(doc, "AWS::CloudFront::OriginAccessControl"))
    header_policies = dict(resources(doc, "AWS::CloudFront::ResponseHeadersPolicy"))
    distributions = dict(resources(doc, "AWS::CloudFront::Distribution"))
    served: dict[str, str] = {}  # bucket → distribution
    for lid, distribution in distributions.items():
        config = props(distribution).get("DistributionConfig") or {}
        for origin in config.get("Origins") or []:
            bucket = logical_id_of(origin.get("DomainName"))
            if bucket not in buckets:
                continue
            served[bucket] = lid
            control = logical_id_of(origin.get("OriginAccessControlId"))
            if control not in controls:
                problems.append(f"{lid}: origin {origin.get('Id')} reads bucket {bucket} without origin access control")
            else:
                oac = props(controls[control]).get("OriginAccessControlConfig") or {}
                if oac.get("SigningBehavior") != "always" or oac.get("OriginAccessControlOriginType") != "s3":
                    problems.append(f"{control}: must sign every request to S3 (SigningBehavior always, type s3)")
            if (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity"):
                problems.append(f"{lid}: origin {origin.get('Id')} uses a legacy origin access identity")
        behaviors = [config.get("DefaultCacheBehavior") or {}, *(config.get("CacheBehaviors") or [])]
        for behavior in behaviors:
            if behavior.get("ViewerProtocolPolicy") not in ("redirect-to-https", "https-only"):
                policy_name = behavior.get("ViewerProtocolPolicy")
                problems.append(f"{lid}: ViewerProtocolPolicy {policy_name!r} serves over HTTP")
            policy = logical_id_of(behavior.get("ResponseHeadersPolicyId"))
            if policy not in header_policies:
                problems.append(f"{lid}: a cache behavior has no response-headers policy of this template")
                continue
            security = (props(header_policies[policy]).get("ResponseHeadersPolicyConfig") or {}).get(
                "SecurityHeadersConfig") or {}
            csp = (security.get("ContentSecurityPolicy") or {}).get("ContentSecurityPolicy")
            text = " ".join(str(csp.get("Fn::Sub", csp) if isinstance(csp, dict) else csp or "").split())
            problems += [f"{policy}: no Content-Security-Policy {d!r}" for d in CSP_DIRECTIVES if d not in text]
            if not security.get("StrictTransportSecurity"):
                problems.append(f"{policy}: no Strict-Transport-Security")
        fallbacks = {(e.get("ErrorCode"), e.get("ResponseCode"), e.get("ResponsePagePath"))
                     for e in config.get("CustomErrorResponses") or []}
        for code in (403, 404):
            if (code, 200, "/index.html") not in fallbacks:
                problems.append(f"{lid}: a client route answered {code} by S3 does not fall back to /index.html")
    for _, policy in resources(doc, "AWS::S3::BucketPolicy"):
        bucket = logical_id_of(props(policy).get("Bucket"))
        for statement in as_list((props(policy).get("PolicyDocument") or {}).get("Statement") or []):
            if statement.get("Effect") != "Allow" or statement.get("Principal") != CLOUDFRONT_PRINCIPAL:
                continue
            source = ((statement.get("Condition") or {}).get("StringEquals") or {}).get("AWS:SourceArn")
            text = str(source.get("Fn::Sub", "") if isinstance(source, dict) else source or "")
            if bucket not in served or f":distribution/${{{served[bucket]}}}" not in text:
                problems.append(f"{bucket}: CloudFront may read it without AWS:SourceArn naming its distribution")
    return problems


def _dead_letter_queues(doc: Doc) -> list[str]:
    return sorted({
        str(logical_id_of(((props(event).get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")))
        for _, function in resources(doc, "AWS::Serverless::Function")
        for event in (props(function).get("Events") or {}).values()
        if event.get("Type") in ("DynamoDB", "Kinesis") and props(event).get("DestinationConfig")
    })


def check_webhook_throttling(doc: Doc) -> list[str]:
    """Webhook routes have no authorizer: API Gateway throttles each one before a function runs, with limits an
    operator sets as template parameters (with a default and a description)."""
    problems = []
    parameters = doc.get("Parameters") or {}
    for function in webhook_functions(doc).values():
        for event in (props(function).get("Events") or {}).values():
            route = props(event)
            if event.get("Type") != "HttpApi" or not str(route.get("Path")).startswith("/webhooks"):
                continue
            key = f"{str(route.get('Method')).upper()} {route.get('Path')}"
            api = (doc.get("Resources") or {}).get(logical_id_of(route.get("ApiId")) or "") or {}
            settings = (props(api).get("RouteSettings") or {}).get(key)
            if not settings:
                problems.append(f"webhook route {key} is not throttled (RouteSettings of its HttpApi)")
                continue
            for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
                name = logical_id_of(settings.get(limit))
                parameter = parameters.get(name or "")
                if not parameter:
                    problems.append(f"{key}: {limit} is not a template parameter")
                elif "Default" not in parameter or not parameter.get("Description"):
                    problems.append(f"parameter {name} needs a Default and a Description")
    return problems


RULES: dict[str, Rule] = {
    "reviewed_types": check_reviewed_types,
    "public_access": check_public_access,
    "encryption": check_encryption,
    "iam": check_iam,
    "dead_letter_queue": check_dead_letter_queue,
    "alarms": check_alarms,
    "console_cdn": check_console_cdn,
    "webhook_throttling": check_webhook_throttling,
}


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_template_follows_the_rule(doc: Doc, rule: Rule) -> None:
    assert rule(doc) == []


# ------------------------------------------------------------------------------------------------ mutations
def _res(doc: Doc, lid: str) -> dict[str, Any]:
    resource: dict[str, Any] = doc["Resources"][lid]
    return resource


def _statements(doc: Doc, lid: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = props(_res(doc, lid))["Policies"][0]["Statement"]
    return statements


def _stream_event(doc: Doc) -> dict[str, Any]:
    event: dict[str, Any] = props(_res(doc, "InboundProcessorFunction"))["Events"]["MessagesStream"]["Properties"]
    return event


def _add(doc: Doc, lid: str, resource: dict[str, Any]) -> None:
    doc["Resources"][lid] = resource


def _distribution(doc: Doc) -> dict[str, Any]:
    config: dict[str, Any] = props(_res(doc, "ConsoleDistribution"))["DistributionConfig"]
    return config


def _origin(doc: Doc) -> dict[str, Any]:
    origin: dict[str, Any] = _distribution(doc)["Origins"][0]
    return origin


MUTATIONS: list[tuple[str, str, Callable[[Doc], Any]]] = [
    ("public_access", "BlockPublicPolicy is not true",
     lambda d: props(_res(d, "MediaBucket"))["PublicAccessBlockConfiguration"].update(BlockPublicPolicy=False)),
    ("public_access", "RestrictPublicBuckets is not true",
     lambda d: props(_res(d, "MediaBucket")).pop("PublicAccessBlockConfiguration")),
    ("public_access", "public ACL PublicRead",
     lambda d: props(_res(d, "MediaBucket")).update(AccessControl="PublicRead")),
    ("public_access", "ACLs not disabled", lambda d: props(_res(d, "MediaBucket")).pop("OwnershipControls")),
    ("public_access", "grants to every principal",
     lambda d: props(_res(d, "MediaBucketPolicy"))["PolicyDocument"]["Statement"].append(
         {"Sid": "PublicRead", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
          "Resource": {"Fn::Sub": "${MediaBucket.Arn}/*"}})),
    ("public_access", "no bucket policy statement denying insecure transport",
     lambda d: props(_res(d, "MediaBucketPolicy"))["PolicyDocument"]["Statement"][0]["Condition"]["Bool"].update(
         {"aws:SecureTransport": "true"})),
    ("public_access", "grants to every principal",
     lambda d: props(_res(d, "CredentialsKey"))["KeyPolicy"]["Statement"].append(
         {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"})),
    ("encryption", "MessagesTable: DynamoDB table without SSE",
     lambda d: props(_res(d, "MessagesTable")).pop("SSESpecification")),
    ("encryption", "IdempotencyTable: DynamoDB table without SSE",
     lambda d: props(_res(d, "IdempotencyTable"))["SSESpecification"].update(SSEEnabled=False)),
    ("encryption", "MediaBucket: S3 bucket without default encryption",
     lambda d: props(_res(d, "MediaBucket")).pop("BucketEncryption")),
    ("encryption", "DeadLetterQueue: SQS queue without SSE",
     lambda d: props(_res(d, "DeadLetterQueue")).pop("SqsManagedSseEnabled")),
    ("encryption", "Plain: SQS queue without SSE", lambda d: _add(d, "Plain", {"Type": "AWS::SQS::Queue"})),
    ("encryption", "Alerts: SNS topic without KmsMasterKeyId",
     lambda d: _add(d, "Alerts", {"Type": "AWS::SNS::Topic"})),
    ("encryption", "KMS key without automatic rotation",
     lambda d: props(_res(d, "CredentialsKey")).update(EnableKeyRotation=False)),
    ("reviewed_types", "AWS::SNS::Topic has no security rule",
     lambda d: _add(d, "Alerts", {"Type": "AWS::SNS::Topic"})),
    ("iam", "wildcard action 'dynamodb:*'",
     lambda d: _statements(d, "WebhookTwilioFunction")[0].update(Action="dynamodb:*")),
    ("iam", "wildcard action '*'", lambda d: _statements(d, "InboxApiFunction")[1].update(Action=["*"])),
    ("iam", "on '*', not on a named resource",
     lambda d: _statements(d, "SendMessageFunction")[-1].update(Resource="*")),
    ("iam", "not on a named resource",
     lambda d: _statements(d, "InboundProcessorFunction")[4].update(Resource={"Fn::Sub": "arn:aws:s3:::*"})),
    ("iam", "not on a named resource",
     lambda d: _statements(d, "ChannelsApiFunction")[1].update(
         Resource={"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"})),
    ("iam", "names no Resource", lambda d: _statements(d, "StatusCallbackFunction")[0].pop("Resource")),
    ("iam", "NotAction", lambda d: _statements(d, "WebhookMetaFunction").append(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": {"Fn::GetAtt": ["MessagesTable", "Arn"]}})),
    ("iam", "is not an inline statement list",
     lambda d: props(_res(d, "InboxApiFunction"))["Policies"].append("AmazonDynamoDBFullAccess")),
    ("iam", "is not an inline statement list",
     lambda d: props(_res(d, "InboxApiFunction"))["Policies"].append(
         {"DynamoDBCrudPolicy": {"TableName": {"Ref": "MessagesTable"}}})),
    ("iam", "Admin: managed policies on a role",
     lambda d: _add(d, "Admin", {"Type": "AWS::IAM::Role", "Properties": {
         "AssumeRolePolicyDocument": {}, "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}})),
    ("iam", "wildcard action 's3:*'",
     lambda d: _add(d, "Extra", {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
         {"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["MediaBucket", "Arn"]}}]}}})),
    ("dead_letter_queue", "no OnFailure destination",
     lambda d: _stream_event(d).pop("DestinationConfig")),
    ("dead_letter_queue", "no OnFailure destination",
     lambda d: _stream_event(d)["DestinationConfig"]["OnFailure"].update(
         Destination={"Fn::GetAtt": ["Elsewhere", "Arn"]})),
    ("dead_letter_queue", "MaximumRetryAttempts unset", lambda d: _stream_event(d).pop("MaximumRetryAttempts")),
    ("dead_letter_queue", "may not sqs:SendMessage",
     lambda d: _statements(d, "InboundProcessorFunction").pop()),
    ("dead_letter_queue", "no stream event source",
     lambda d: props(_res(d, "InboundProcessorFunction"))["Events"].clear()),
    ("alarms", "no alarm on DeadLetterQueue ApproximateNumberOfMessagesVisible > 0",
     lambda d: d["Resources"].pop("DeadLetterQueueAlarm")),
    ("alarms", "no alarm on DeadLetterQueue ApproximateNumberOfMessagesVisible > 0",
     lambda d: props(_res(d, "DeadLetterQueueAlarm")).update(Threshold=5)),
    ("alarms", "no alarm on WebhookMetaFunction's Lambda Errors",
     lambda d: props(_res(d, "WebhookServerErrorAlarm"))["Metrics"].pop(5)),
    ("alarms", "no alarm on StatusCallbackFunction's 5xx metric",
     lambda d: props(_res(d, "WebhookServerErrorAlarm"))["Metrics"].pop(3)),
    ("alarms", "which WebhookTwilioFunction's code never emits",
     lambda d: props(_res(d, "WebhookServerErrorAlarm"))["Metrics"][1]["MetricStat"]["Metric"].update(
         MetricName="TwilioWebhookBroken")),
    ("alarms", "no alarm on WebhookTwilioFunction's InvalidSignature metric",
     lambda d: d["Resources"].pop("WebhookSignatureFailureAlarm")),
    ("alarms", "AlarmActions must notify AlarmTopicArn",
     lambda d: props(_res(d, "DeadLetterQueueAlarm")).pop("AlarmActions")),
    ("alarms", "no alarm on AutoReplyNotRecorded",
     lambda d: props(_res(d, "UnrecordedOutcomeAlarm"))["Metrics"].pop(3)),
    ("alarms", "no alarm on SendNotRecorded",
     lambda d: props(_res(d, "UnrecordedOutcomeAlarm"))["Metrics"][1]["MetricStat"]["Metric"].update(
         Dimensions=[{"Name": "service", "Value": "send_mesage"}])),
    ("alarms", "dashboard does not show alarm UnrecordedOutcomeAlarm",
     lambda d: props(_res(d, "Dashboard")).update(DashboardBody={"Fn::Sub": str(
         props(_res(d, "Dashboard"))["DashboardBody"]["Fn::Sub"]).replace('"${UnrecordedOutcomeAlarm.Arn}"', '"x"')})),
    ("alarms", "no CloudWatch dashboard", lambda d: d["Resources"].pop("Dashboard")),
    ("public_access", "ConsoleBucket: PublicAccessBlockConfiguration.BlockPublicAcls is not true",
     lambda d: props(_res(d, "ConsoleBucket"))["PublicAccessBlockConfiguration"].update(BlockPublicAcls=False)),
    ("public_access", "ConsoleBucket: no bucket policy statement denying insecure transport",
     lambda d: props(_res(d, "ConsoleBucketPolicy"))["PolicyDocument"]["Statement"].pop()),
    ("encryption", "ConsoleBucket: S3 bucket without default encryption",
     lambda d: props(_res(d, "ConsoleBucket")).pop("BucketEncryption")),
    ("console_cdn", "reads bucket ConsoleBucket without origin access control",
     lambda d: _origin(d).pop("OriginAccessControlId")),
    ("console_cdn", "uses a legacy origin access identity",
     lambda d: _origin(d)["S3OriginConfig"].update(OriginAccessIdentity="origin-access-identity/cloudfront/E1")),
    ("console_cdn", "must sign every request to S3",
     lambda d: props(_res(d, "ConsoleOriginAccessControl"))["OriginAccessControlConfig"].update(
         SigningBehavior="no-override")),
    ("console_cdn", "serves over HTTP",
     lambda d: _distribution(d)["DefaultCacheBehavior"].update(ViewerProtocolPolicy="allow-all")),
    ("console_cdn", "no response-headers policy",
     lambda d: _distribution(d)["DefaultCacheBehavior"].pop("ResponseHeadersPolicyId")),
    ("console_cdn", "no Content-Security-Policy \"script-src 'self'\"",
     lambda d: props(_res(d, "ConsoleResponseHeadersPolicy"))["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
     ["ContentSecurityPolicy"].update(ContentSecurityPolicy="default-src *")),
    ("console_cdn", "CloudFront may read it without AWS:SourceArn",
     lambda d: props(_res(d, "ConsoleBucketPolicy"))["PolicyDocument"]["Statement"][0].pop("Condition")),
    ("console_cdn", "does not fall back to /index.html",
     lambda d: _distribution(d)["CustomErrorResponses"].pop(0)),
    ("webhook_throttling", "webhook route POST /webhooks/twilio is not throttled",
     lambda d: props(_res(d, "HttpApi"))["RouteSettings"].pop("POST /webhooks/twilio")),
    ("webhook_throttling", "GET /webhooks/meta: ThrottlingRateLimit is not a template parameter",
     lambda d: props(_res(d, "HttpApi"))["RouteSettings"]["GET /webhooks/meta"].update(ThrottlingRateLimit=50)),
    ("webhook_throttling", "needs a Default and a Description",
     lambda d: d["Parameters"]["WebhookThrottlingBurstLimit"].pop("Description")),
    ("alarms", "dashboard does not show the depth of DeadLetterQueue",
     lambda d: props(_res(d, "Dashboard")).update(DashboardBody={"Fn::Sub": '{"widgets": [{"type": "text"}]}'})),
]


@pytest.mark.parametrize(
    ("rule", "expected", "mutate"), MUTATIONS, ids=[f"{rule}-{n}" for n, (rule, _, _) in enumerate(MUTATIONS)]
)
def test_rule_catches_a_planted_violation(doc: Doc, rule: str, expected: str, mutate: Callable[[Doc], Any]) -> None:
    assert RULES[rule](doc) == []
    mutated = copy.deepcopy(doc)

    mutate(mutated)

    problems = RULES[rule](mutated)
    assert any(expected in problem for problem in problems), problems


def test_kms_key_policy_exception_is_the_account_root_only(doc: Doc) -> None:
    statements = props(_res(doc, "CredentialsKey"))["KeyPolicy"]["Statement"]
    root = next(s for s in statements if s.get("Sid") == "AccountAdministers")

    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


def test_alarms_have_actions_only_with_a_topic(doc: Doc) -> None:
    assert doc["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert doc["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert {lid for lid, _ in resources(doc, "AWS::CloudWatch::Alarm")} == {
        "DeadLetterQueueAlarm",
        "WebhookServerErrorAlarm",
        "WebhookSignatureFailureAlarm",
        "UnrecordedOutcomeAlarm",
    }
