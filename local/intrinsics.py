"""Evaluate CloudFormation intrinsic functions (long form, as produced by ``local.template.CfnLoader``)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class UnresolvableError(ValueError):
    """An intrinsic the local stack cannot evaluate (Fn::ImportValue, Fn::Cidr, an unknown name...)."""


class _NoValue:
    """``AWS::NoValue``: the surrounding key or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    """Resolves intrinsics against parameters, pseudo parameters, conditions and the resources' physical ids.

    ``ref(logical_id)`` and ``get_att(logical_id, attribute)`` are supplied by the caller (``Resources``) so
    that this module knows nothing about AWS resource types.
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self._parameters = parameters
        self._pseudo = pseudo
        self._conditions = conditions
        self._mappings = mappings
        self._ref = ref
        self._get_att = get_att
        self._condition_cache: dict[str, bool] = {}

    # ---------------------------------------------------------------------------------------- values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key.startswith("Fn::"):
                raise UnresolvableError(f"{key} is not supported locally")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def resolve_str(self, value: Any) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (list, dict)):
            raise UnresolvableError(f"expected a scalar, got {resolved!r}")
        return "" if resolved is None else str(resolved)

    def _fn_ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._ref(name)

    def _fn_get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical_id, attribute = self.resolve(arg[0]), self.resolve(arg[1])
        return self._get_att(str(logical_id), str(attribute))

    def _fn_sub(self, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self._pseudo:
                logical_id, attribute = name.split(".", 1)
                return str(self._get_att(logical_id, attribute))
            return str(self._fn_ref(name))

        return _SUB_VARIABLE.sub(replace, template)

    def _fn_join(self, arg: Any) -> str:
        delimiter, items = arg
        return str(delimiter).join(str(v) for v in self.resolve(items))

    def _fn_select(self, arg: Any) -> Any:
        index, items = self.resolve(arg[0]), self.resolve(arg[1])
        return items[int(index)]

    def _fn_split(self, arg: Any) -> list[str]:
        delimiter, text = arg
        return str(self.resolve(text)).split(str(delimiter))

    def _fn_if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(v) for v in arg)
        return self._mappings[name][top][second]

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(self.resolve_str(arg).encode()).decode()

    def _fn_get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg) or self._pseudo["AWS::Region"]
        return [f"{region}{zone}" for zone in "abc"]

    # Conditions are also usable as values (Fn::Equals inside Fn::If's first argument is not allowed,
    # but inside Conditions they are), so they share the dispatch table.
    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(v) for v in arg)
        return str(left) == str(right)

    def _fn_not(self, arg: Any) -> bool:
        return not self._truth(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self._truth(v) for v in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self._truth(v) for v in arg)

    def _fn_condition(self, name: str) -> bool:
        return self.condition(name)

    def _truth(self, value: Any) -> bool:
        return bool(self.resolve(value))

    _FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Base64": _fn_base64,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
    }

    # ---------------------------------------------------------------------------------------- conditions
    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self._conditions:
                raise UnresolvableError(f"unknown condition {name!r}")
            self._condition_cache[name] = self._truth(self._conditions[name])
        return self._condition_cache[name]


def references(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or Fn::Sub (for ordering resource creation)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(str(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]))
            elif key == "Fn::Sub":
                template = arg if isinstance(arg, str) else arg[0]
                for name in _SUB_VARIABLE.findall(template):
                    if not name.startswith("!"):
                        found.add(name.split(".", 1)[0])
                found |= references(arg if isinstance(arg, str) else arg[1])
            else:
                found |= references(arg)
    return found
