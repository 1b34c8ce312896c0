"""Read ``template.yaml`` (SAM + CloudFormation) into the few facts the local stack needs.

Values are returned *unresolved* (intrinsics such as ``{"Ref": "ChannelsTable"}`` stay as they are): only
``local.provision.Resources`` knows the physical names they resolve to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FUNCTION_TYPE = "AWS::Serverless::Function"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")

# Lambda's own defaults for a DynamoDB event source mapping.
DEFAULT_STREAM_BATCH_SIZE = 100


# ------------------------------------------------------------------------------------------------ YAML loader
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long JSON form (``!Ref X`` → ``{"Ref": "X"}``)."""


def _construct_short_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


def _construct_timestamp_as_string(loader: CfnLoader, node: yaml.Node) -> str:
    # CloudFormation has no date type: "2010-09-09" unquoted is still a string there.
    return str(loader.construct_scalar(node))


CfnLoader.add_multi_constructor("!", _construct_short_tag)
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_string)


def load_yaml(text: str) -> dict[str, Any]:
    doc = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader derives from SafeLoader
    if not isinstance(doc, dict):
        raise ValueError("template is not a mapping")
    return doc


# ------------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    runtime: str | None
    timeout: Any  # int or an intrinsic; resolved by Resources
    memory_size: Any
    environment: dict[str, Any]  # Globals merged with the function's own Variables, unresolved
    layer_dirs: tuple[Path, ...]
    function_name: Any = None
    log_group: Any = None
    condition: str | None = None
    # The role: each ``Policies`` entry as written (statement lists, SAM policy templates, managed policy names),
    # or ``Role`` when the template gives its own. Unresolved.
    policies: tuple[Any, ...] = ()
    role: Any = None

    @property
    def name(self) -> str:
        """The function directory name (``channels_api``): what developers type."""
        return self.code_dir.name


@dataclass(frozen=True)
class AuthorizerSpec:
    name: str
    issuer: Any
    audience: Any  # list (possibly of intrinsics)
    identity_source: str = "$request.header.Authorization"

    @property
    def header_name(self) -> str:
        prefix = "$request.header."
        source = self.identity_source.split(",")[0].strip()
        return source[len(prefix) :].lower() if source.startswith(prefix) else "authorization"


@dataclass(frozen=True)
class RouteSpec:
    method: str  # upper case, or "ANY"
    path: str  # "/v1/channels/{id}", or "$default"
    function_id: str
    event_name: str
    api_id: str | None
    authorizer: AuthorizerSpec | None
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class StreamSourceSpec:
    function_id: str
    event_name: str
    table_id: str
    starting_position: str
    batch_size: int
    bisect_on_error: bool
    maximum_retry_attempts: int | None  # None: Lambda's default (retry until the record expires)
    filter_patterns: tuple[dict[str, Any], ...]
    report_batch_item_failures: bool
    on_failure_queue_id: str | None
    enabled: bool = True


@dataclass
class Template:
    path: Path
    doc: dict[str, Any]
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.path.parent

    # -------------------------------------------------------------------------- raw sections
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.doc.get("Resources") or {}

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return self.doc.get("Parameters") or {}

    @property
    def conditions(self) -> dict[str, Any]:
        return self.doc.get("Conditions") or {}

    @property
    def mappings(self) -> dict[str, Any]:
        return self.doc.get("Mappings") or {}

    def globals_for(self, section: str) -> dict[str, Any]:
        return (self.doc.get("Globals") or {}).get(section) or {}

    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") in types}

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: p["Default"] for name, p in self.parameters.items() if "Default" in p}

    # -------------------------------------------------------------------------- functions
    def functions(self) -> list[FunctionSpec]:
        return [self._function_spec(lid, res) for lid, res in self.resources_of_type(FUNCTION_TYPE).items()]

    def function(self, name_or_id: str) -> FunctionSpec:
        """Find a function by logical id (``ChannelsApiFunction``) or directory name (``channels_api``)."""
        for spec in self.functions():
            if name_or_id in (spec.logical_id, spec.name):
                return spec
        known = ", ".join(f"{s.name} ({s.logical_id})" for s in self.functions())
        raise KeyError(f"no function {name_or_id!r} in {self.path.name}; known: {known}")

    def _function_spec(self, logical_id: str, resource: Mapping[str, Any]) -> FunctionSpec:
        props = resource.get("Properties") or {}
        glob = self.globals_for("Function")
        merged = {**glob, **props}  # scalars: the function wins
        code_uri = merged.get("CodeUri")
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical_id}: only a local CodeUri directory is supported, got {code_uri!r}")
        environment = {
            **((glob.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        # SAM Globals: lists are additive, the function's entries after the global ones.
        layers = [*(glob.get("Layers") or []), *(props.get("Layers") or [])]
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=(self.root / code_uri).resolve(),
            handler=str(merged.get("Handler") or "app.lambda_handler"),
            runtime=merged.get("Runtime"),
            timeout=merged.get("Timeout", 3),
            memory_size=merged.get("MemorySize", 128),
            environment=environment,
            layer_dirs=tuple(self._layer_dirs(layers)),
            function_name=props.get("FunctionName"),
            log_group=(props.get("LoggingConfig") or {}).get("LogGroup"),
            condition=resource.get("Condition"),
            policies=tuple(_as_list(props.get("Policies"))),
            role=props.get("Role"),
        )

    def _layer_dirs(self, layers: list[Any]) -> list[Path]:
        """Local layers referenced with ``!Ref``; what SAM would put under /opt/python."""
        dirs = []
        for layer in layers:
            target = layer.get("Ref") if isinstance(layer, dict) else None
            res = self.resources.get(target or "")
            if res and res.get("Type") in LAYER_TYPES:
                props = res.get("Properties") or {}
                uri = props.get("ContentUri") or props.get("Content")
                directory = self._layer_python_dir((self.root / uri).resolve(), res) if isinstance(uri, str) else None
                if directory and directory not in dirs:
                    dirs.append(directory)
        return dirs

    @staticmethod
    def _layer_python_dir(content: Path, resource: Mapping[str, Any]) -> Path:
        # With a BuildMethod, SAM builds the content dir into python/; a prebuilt layer already has python/.
        build_method = (resource.get("Metadata") or {}).get("BuildMethod")
        if not build_method and (content / "python").is_dir():
            return content / "python"
        return content

    # -------------------------------------------------------------------------- HTTP API
    def http_routes(self) -> list[RouteSpec]:
        routes = []
        for spec_id, resource in self.resources_of_type(FUNCTION_TYPE).items():
            events = (resource.get("Properties") or {}).get("Events") or {}
            for event_name, event in events.items():
                if event.get("Type") == "HttpApi":
                    routes.append(self._route(spec_id, event_name, event.get("Properties") or {}))
        return routes

    def _route(self, function_id: str, event_name: str, props: Mapping[str, Any]) -> RouteSpec:
        api_id = self._api_logical_id(props.get("ApiId"))
        auth = props.get("Auth") or {}
        api_auth = self._api_auth(api_id)
        authorizer_name = auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
        authorizer = None
        if authorizer_name and authorizer_name != "NONE":
            authorizer = self._authorizer(authorizer_name, api_auth)
        path = props.get("Path")
        method = str(props.get("Method") or "ANY").upper()
        return RouteSpec(
            method="ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
            path=str(path) if path else "$default",
            function_id=function_id,
            event_name=event_name,
            api_id=api_id,
            authorizer=authorizer,
            scopes=tuple(auth.get("AuthorizationScopes") or ()),
        )

    def _api_logical_id(self, api_ref: Any) -> str | None:
        if isinstance(api_ref, dict) and "Ref" in api_ref:
            return str(api_ref["Ref"])
        return None  # no ApiId: SAM's implicit API (ServerlessHttpApi)

    def _api_auth(self, api_id: str | None) -> dict[str, Any]:
        if api_id is None:  # SAM's implicit API takes its settings from Globals only
            return self.globals_for("HttpApi").get("Auth") or {}
        props = self.resources.get(api_id, {}).get("Properties") or {}
        return props.get("Auth") or self.globals_for("HttpApi").get("Auth") or {}

    @staticmethod
    def _authorizer(name: str, api_auth: Mapping[str, Any]) -> AuthorizerSpec:
        config = (api_auth.get("Authorizers") or {}).get(name)
        if not config or "JwtConfiguration" not in config:
            raise ValueError(f"authorizer {name!r}: only JWT authorizers are supported by the local gateway")
        jwt_config = config["JwtConfiguration"]
        audience = jwt_config.get("audience") or jwt_config.get("Audience") or []
        return AuthorizerSpec(
            name=name,
            issuer=jwt_config.get("issuer") or jwt_config.get("Issuer"),
            audience=audience if isinstance(audience, list) else [audience],
            identity_source=str(config.get("IdentitySource") or "$request.header.Authorization"),
        )

    # -------------------------------------------------------------------------- DynamoDB streams
    def stream_sources(self) -> list[StreamSourceSpec]:
        sources = []
        for function_id, resource in self.resources_of_type(FUNCTION_TYPE).items():
            events = (resource.get("Properties") or {}).get("Events") or {}
            for event_name, event in events.items():
                if event.get("Type") == "DynamoDB":
                    sources.append(self._stream_source(function_id, event_name, event.get("Properties") or {}))
        return sources

    def _stream_source(self, function_id: str, event_name: str, props: Mapping[str, Any]) -> StreamSourceSpec:
        table_id = logical_id_of(props.get("Stream"))
        if table_id is None:
            raise ValueError(f"{function_id}.{event_name}: Stream must be !GetAtt <Table>.StreamArn")
        filters = (props.get("FilterCriteria") or {}).get("Filters") or []
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        retries = props.get("MaximumRetryAttempts")
        return StreamSourceSpec(
            function_id=function_id,
            event_name=event_name,
            table_id=table_id,
            starting_position=str(props.get("StartingPosition") or "TRIM_HORIZON"),
            batch_size=int(props.get("BatchSize") or DEFAULT_STREAM_BATCH_SIZE),
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=None if retries in (None, -1) else int(retries),
            filter_patterns=tuple(_parse_pattern(f.get("Pattern")) for f in filters),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            on_failure_queue_id=logical_id_of(on_failure),
            enabled=bool(props.get("Enabled", True)),
        )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def logical_id_of(value: Any) -> str | None:
    """``!GetAtt X.Attr`` or ``!Ref X`` → ``X``."""
    if not isinstance(value, dict):
        return None
    if "Ref" in value:
        return str(value["Ref"])
    att = value.get("Fn::GetAtt")
    if isinstance(att, str):
        att = att.split(".", 1)
    return str(att[0]) if att else None


def _parse_pattern(pattern: Any) -> dict[str, Any]:
    # Lambda wants each filter pattern as a JSON *string*; tolerate a YAML mapping too.
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    if not isinstance(parsed, dict):
        raise ValueError(f"filter pattern must be a JSON object, got {pattern!r}")
    return parsed


def load_template(path: Path | str) -> Template:
    path = Path(path).resolve()
    return Template(path=path, doc=load_yaml(path.read_text()))
