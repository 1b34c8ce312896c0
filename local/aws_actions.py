"""The IAM actions each AWS call needs, recorded per function of the template (moto enforces no IAM).

``Recorder`` sees every operation a botocore client prepares, boto3's clients and PynamoDB's alike, and presigned
URLs too (``BaseClient._emit_api_params`` is where both ``_make_api_call`` and ``generate_presigned_url`` turn
parameters into a request). A call made while ``local.runtime.CALLER`` names a function of the repository's
template (its invocations, its cold start, Lambda's OnFailure send for it) becomes one ``Use`` per action it
needs: ``(function, action, resource)``. The resource is a *canonical* ARN: the template's logical id stands
for the physical name (``arn:aws:dynamodb:us-east-1:123456789012:table/MessagesTable/index/by_activity``), so
that uses from any stack, in any process, compare with the template's policies resolved the same way
(``canonical_resources``). tests/iam_coverage.py does that comparison for the whole suite (docs/decisions.md
D23).

What an operation needs (``needs``), per the service authorization references:
- DynamoDB: the action named like the operation, on the table (a ``Query``/``Scan`` with ``IndexName`` on the
  index); ``TransactWriteItems`` needs ``PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem`` per item,
  on that item's table (there is no TransactWriteItems action), ``TransactGetItems`` ``GetItem`` per item.
- S3: multipart uploads (``CreateMultipartUpload``, ``UploadPart``, ``CompleteMultipartUpload``) are authorized
  by ``s3:PutObject``, ``HeadObject`` by ``s3:GetObject``; a presigned URL makes no call, but S3 authorizes
  whoever uses it as its signer, so presigning ``get_object`` counts as the signer's ``s3:GetObject``.
- KMS: the action on the key (``KeyId`` as id, ARN, alias name or alias ARN). ``Decrypt`` without ``KeyId``
  uses the key the ciphertext names: the template's only key (with several, pass ``KeyId``).
- EventBridge ``PutEvents`` on each entry's bus; SQS on the queue (batch operations need the single action);
  Cognito on the user pool.
An operation not listed here is recorded against ``unknown:<service>:<Operation>``, which no policy grants: the
check fails until this module learns what it needs.

Calls submitted to a ``ThreadPoolExecutor`` (s3transfer's multipart upload threads) stay the submitter's.
``python -m local.dev`` records too when ``LOCAL_AWS_ACTIONS_DIR`` is set (e2e stacks started by the tests).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from local import TEMPLATE_PATH
from local.provision import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, PhysicalResource, Resources
from local.runtime import CALLER, Caller
from local.template import Template, logical_id_of

RECORD_DIR_ENV = "LOCAL_AWS_ACTIONS_DIR"
REGION = DEFAULT_REGION  # of canonical ARNs
ACCOUNT = DEFAULT_ACCOUNT_ID

TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
KEY = "AWS::KMS::Key"
ALIAS = "AWS::KMS::Alias"
BUS = "AWS::Events::EventBus"
QUEUE = "AWS::SQS::Queue"
USER_POOL = "AWS::Cognito::UserPool"


@dataclass(frozen=True)
class Use:
    """``function`` needed ``action`` on ``resource`` (a canonical ARN); ``where``: the test it was first seen in."""

    function: str
    action: str
    resource: str
    where: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.function, self.action, self.resource


@dataclass(frozen=True)
class Need:
    """An action on a resource as the request names it: ``kind`` (a resource type above), the name the call
    used (table name or ARN, bucket, key id or alias, bus name or ARN, queue URL, pool id), and what follows the
    resource's ARN (``/index/by_activity``, ``/<object key>``)."""

    action: str
    kind: str
    name: str
    suffix: str = ""


# ------------------------------------------------------------------------------------------- canonical ARNs
def canonical_arn(kind: str, logical_id: str) -> str:
    return {
        TABLE: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}",
        BUCKET: f"arn:aws:s3:::{logical_id}",
        KEY: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}",
        BUS: f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{logical_id}",
        QUEUE: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}",
        USER_POOL: f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{logical_id}",
    }[kind]


def canonical_resources(template: Template) -> Resources:
    """``template``'s resources named by their logical ids, with ARNs shaped like AWS's: what policies are
    resolved against, so that they compare with the ``Use``s recorded from any stack."""
    resources = Resources(template, stage="canonical", region=REGION, account_id=ACCOUNT)
    for lid, resource in template.resources.items():
        kind = str(resource.get("Type"))
        if kind not in (TABLE, BUCKET, KEY, ALIAS, BUS, QUEUE, USER_POOL):
            continue  # functions, logs, the API...: Resources' placeholders
        if kind == ALIAS:
            name = resources.resolver.resolve_str((resource.get("Properties") or {}).get("AliasName"))
            resources.physical[lid] = PhysicalResource(lid, kind, name)
            continue
        arn = canonical_arn(kind, lid)
        attributes = {"Arn": arn}
        ref = lid
        if kind == TABLE:
            attributes["StreamArn"] = f"{arn}/stream/canonical"
        elif kind == BUCKET:
            attributes |= {"DomainName": f"{lid}.s3.amazonaws.com",
                           "RegionalDomainName": f"{lid}.s3.{REGION}.amazonaws.com"}
        elif kind == KEY:
            attributes["KeyId"] = lid
        elif kind == BUS:
            attributes["Name"] = lid
        elif kind == QUEUE:
            ref = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{lid}"
            attributes |= {"QueueName": lid, "QueueUrl": ref}
        elif kind == USER_POOL:
            attributes |= {"UserPoolId": lid, "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{lid}"}
        resources.physical[lid] = PhysicalResource(lid, kind, ref, attributes)
    return resources


def resource_arn(need: Need, resources: Resources | None) -> str:
    """The canonical ARN of what ``need`` names in the stack ``resources`` describes; a name that is not one of
    the template's resources keeps its physical name (no policy of the template grants it)."""
    if need.kind == "unknown":
        return f"unknown:{need.name}"
    logical_id = _logical_id(need, resources) if resources is not None else None
    if logical_id is None:
        return _foreign_arn(need) + need.suffix
    return canonical_arn(need.kind, logical_id) + need.suffix


def _logical_id(need: Need, resources: Resources) -> str | None:
    name = need.name
    if need.kind == KEY:
        if not name:  # Decrypt without KeyId: the key that encrypted it
            keys = list(resources.template.resources_of_type(KEY))
            return keys[0] if len(keys) == 1 else None
        if ":alias/" in name:
            name = "alias/" + name.split(":alias/", 1)[1]
        if name.startswith("alias/"):
            alias = next((r for r in resources.physical.values() if r.type == ALIAS and r.ref == name), None)
            if alias is None:
                return None
            target = (resources.template.resources[alias.logical_id].get("Properties") or {}).get("TargetKeyId")
            return logical_id_of(target)
    names = {name}
    if need.kind == QUEUE:  # a queue URL's host depends on the endpoint; its name does not
        names.add(name.rstrip("/").rsplit("/", 1)[-1])
    for physical in resources.physical.values():
        known = {physical.ref, *physical.attributes.values()}
        if physical.type == need.kind and physical.provisioned and names & known:
            return physical.logical_id
    return None


def _foreign_arn(need: Need) -> str:
    if need.name.startswith("arn:"):
        return need.name
    if need.kind == QUEUE:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{need.name.rstrip('/').rsplit('/', 1)[-1]}"
    if need.kind == KEY and not need.name:
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/?"  # Decrypt without KeyId, and no single key to tell
    return canonical_arn(need.kind, need.name)


# ------------------------------------------------------------------------------------------- what calls need
_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_S3_OBJECT = {
    "GetObject": "GetObject",
    "HeadObject": "GetObject",
    "PutObject": "PutObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload",
    "ListParts": "ListMultipartUploadParts",
    "DeleteObject": "DeleteObject",
    "GetObjectTagging": "GetObjectTagging",
    "PutObjectTagging": "PutObjectTagging",
}
_S3_VERSIONED = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion"}
_S3_BUCKET = {
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
}
_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def needs(service: str, operation: str, params: Mapping[str, Any]) -> list[Need]:
    """The actions (and on what) the operation ``service.operation`` with ``params`` needs."""
    handler = _SERVICES.get(service)
    found = handler(operation, params) if handler is not None else None
    return found if found is not None else [Need(f"{service}:{operation}", "unknown", f"{service}:{operation}")]


def _dynamodb(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    if operation == "TransactWriteItems":
        return [
            Need(f"dynamodb:{_TRANSACT_WRITE[kind]}", TABLE, body["TableName"])
            for item in params.get("TransactItems") or []
            for kind, body in item.items()
            if kind in _TRANSACT_WRITE
        ]
    if operation == "TransactGetItems":
        return [Need("dynamodb:GetItem", TABLE, item["Get"]["TableName"]) for item in params.get("TransactItems") or []]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Need(f"dynamodb:{operation}", TABLE, table) for table in params.get("RequestItems") or {}]
    if "TableName" not in params:
        return None
    suffix = f"/index/{params['IndexName']}" if operation in ("Query", "Scan") and params.get("IndexName") else ""
    return [Need(f"dynamodb:{operation}", TABLE, params["TableName"], suffix)]


def _s3(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    bucket = params.get("Bucket", "")
    if operation in _S3_OBJECT:
        action = _S3_OBJECT[operation]
        if params.get("VersionId"):
            action = _S3_VERSIONED.get(operation, action)
        return [Need(f"s3:{action}", BUCKET, bucket, f"/{params.get('Key', '')}")]
    if operation == "DeleteObjects":
        objects = (params.get("Delete") or {}).get("Objects") or []
        return [Need("s3:DeleteObject", BUCKET, bucket, f"/{o.get('Key', '')}") for o in objects]
    if operation in _S3_BUCKET:
        return [Need(f"s3:{_S3_BUCKET[operation]}", BUCKET, bucket)]
    return None


def _kms(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    if operation not in ("Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey"):
        return None
    return [Need(f"kms:{operation}", KEY, str(params.get("KeyId") or ""))]


def _events(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    if operation != "PutEvents":
        return None
    buses = dict.fromkeys(str(entry.get("EventBusName") or "default") for entry in params.get("Entries") or [])
    return [Need("events:PutEvents", BUS, bus) for bus in buses]


def _sqs(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    queue = params.get("QueueUrl") or params.get("QueueName")
    if not queue:
        return None
    return [Need(f"sqs:{_SQS_BATCH.get(operation, operation)}", QUEUE, str(queue))]


def _cognito(operation: str, params: Mapping[str, Any]) -> list[Need] | None:
    if "UserPoolId" not in params:
        return None
    return [Need(f"cognito-idp:{operation}", USER_POOL, str(params["UserPoolId"]))]


_SERVICES: dict[str, Callable[[str, Mapping[str, Any]], list[Need] | None]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "kms": _kms,
    "events": _events,
    "sqs": _sqs,
    "cognito-idp": _cognito,
}


# ------------------------------------------------------------------------------------------- recording
class Recorder:
    """Collects the ``Use``s of the template's functions; with ``path``, appends each new one as a JSON line
    (several processes can write to one directory, each to its own file, and nothing waits for a clean exit)."""

    def __init__(self, path: Path | None = None, *, template_path: Path = TEMPLATE_PATH, where: str = "") -> None:
        self.path = path
        self.template_path = template_path.resolve()
        self.where = where  # what every use is said to come from; else the test running (pytest tells)
        self._seen: dict[tuple[str, str, str], Use] = {}
        self._lock = threading.Lock()

    def uses(self) -> list[Use]:
        with self._lock:
            return list(self._seen.values())

    def record(self, caller: Caller, service: str, operation: str, params: Mapping[str, Any]) -> None:
        resources = caller.resources
        if resources is None or resources.template.path.resolve() != self.template_path:
            return  # a test's stand-in template, or a function run without a stack
        where = self.where or os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        try:
            found = needs(service, operation, params)
        except Exception as error:  # a request shaped unlike the model: shown as a use no policy grants
            found = [Need(f"{service}:{operation}", "unknown", f"{service}:{operation} ({type(error).__name__})")]
        for need in found:
            use = Use(caller.function_id, need.action, resource_arn(need, resources), where)
            with self._lock:
                if use.key in self._seen:
                    continue
                self._seen[use.key] = use
                if self.path is not None:
                    with self.path.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(asdict(use)) + "\n")


def read_uses(directory: Path) -> list[Use]:
    """Every ``Use`` the processes recording into ``directory`` wrote (first sighting of each kept)."""
    found: dict[tuple[str, str, str], Use] = {}
    for file in sorted(directory.glob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                use = Use(**json.loads(line))
                found.setdefault(use.key, use)
    return list(found.values())


_recorders: list[Recorder] = []
_undo: list[Callable[[], None]] = []
_install_lock = threading.Lock()


def install(recorder: Recorder) -> Callable[[], None]:
    """Give ``recorder`` every call botocore prepares from now on; returns the undo. The hooks go in with the
    first recorder and out with the last (a test can add its own beside the suite's)."""
    with _install_lock:
        if not _recorders:
            _undo.append(_patch())
        _recorders.append(recorder)

    def uninstall() -> None:
        with _install_lock:
            if recorder in _recorders:
                _recorders.remove(recorder)
                if not _recorders:
                    _undo.pop()()

    return uninstall


def _patch() -> Callable[[], None]:
    from botocore.client import BaseClient

    emit = BaseClient._emit_api_params
    submit = ThreadPoolExecutor.submit

    def _emit_api_params(client: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
        params = emit(client, api_params, operation_model, context)
        caller = CALLER.get()
        if caller is not None:
            for recorder in list(_recorders):
                recorder.record(caller, client.meta.service_model.service_name, operation_model.name, params)
        return params

    def carry_caller(executor: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        caller = CALLER.get()  # s3transfer uploads parts on its own threads: still the submitter's calls

        def run(*a: Any, **k: Any) -> Any:
            token = CALLER.set(caller)
            try:
                return fn(*a, **k)
            finally:
                CALLER.reset(token)

        return submit(executor, run, *args, **kwargs)

    BaseClient._emit_api_params = _emit_api_params  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = carry_caller  # type: ignore[method-assign]

    def unpatch() -> None:
        BaseClient._emit_api_params = emit  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]

    return unpatch


def install_from_env() -> None:
    """``python -m local.dev`` under the tests: record into ``$LOCAL_AWS_ACTIONS_DIR`` when it is set."""
    directory = os.environ.get(RECORD_DIR_ENV)
    if directory and not _recorders:
        started_by = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0] or "a test"
        where = f"a local stack (python -m local.dev) started by {started_by}"
        install(Recorder(Path(directory) / f"stack-{os.getpid()}.jsonl", where=where))

