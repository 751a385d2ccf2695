"""Read templates/onboarding.yaml the way the console would use it, for the demo.

Parameter values are each parameter's Default plus the values the caller gives, checked against the
parameter's constraints and the template's Rules. Properties are resolved with a small, honest subset of
the intrinsic functions (Ref, Fn::GetAtt, Fn::If and the condition functions); anything else raises
TemplateError naming where it was found, so the demo never guesses what CloudFormation would do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NO_VALUE = "AWS::NoValue"


class TemplateError(ValueError):
    """The template or a parameter value is something the demo (or the console) would refuse."""


class _NoValue:
    """Stands for Ref AWS::NoValue: the property or list item disappears."""

    def __repr__(self) -> str:
        return NO_VALUE


_DROP = _NoValue()


class _TemplateLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation's short forms (!Ref X, !GetAtt A.B, !If [...])."""


def _short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_form)


def load(path: Path) -> dict[str, Any]:
    """The template as plain data, short-form tags turned into their long form (Ref, Fn::If ...)."""
    template = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - safe loader
    if not isinstance(template, Mapping) or "Resources" not in template:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return dict(template)


@dataclass(frozen=True, slots=True)
class Parameters:
    """The values a stack would be created with, and which of them the caller set."""

    values: dict[str, str]
    overridden: tuple[str, ...]


def parameters(
    template: Mapping[str, Any], given: Mapping[str, str], *, unchecked: Mapping[str, str] | None = None
) -> Parameters:
    """Defaults plus `given`, all strings as the console passes them; every value checked like the console.

    `unchecked` names parameters whose constraint the demo knowingly does not meet, with the reason; a
    violation there is allowed, any other raises TemplateError listing every problem.
    """
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"the template has no parameter {', '.join(unknown)}")
    values: dict[str, str] = {}
    problems: list[str] = []
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = _as_string(spec["Default"])
        else:
            problems.append(f"{name} has no default and no value was given")
            continue
        values[name] = value
        problem = _constraint_problem(name, spec, value)
        if problem and name not in (unchecked or {}):
            problems.append(problem)
    if problems:
        raise TemplateError("; ".join(problems))
    return Parameters(values, tuple(name for name in declared if name in given))


def _constraint_problem(name: str, spec: Mapping[str, Any], value: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_as_string(v) for v in allowed]:
        return f"{name}={value!r} is not one of {', '.join(_as_string(v) for v in allowed)}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        return f"{name}={value!r} does not match its AllowedPattern"
    for key, fits in (("MinLength", lambda n: len(value) >= n), ("MaxLength", lambda n: len(value) <= n)):
        if key in spec and not fits(int(spec[key])):
            return f"{name} breaks its {key} of {spec[key]}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"{name}={value!r} is not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"{name}={value} is below its MinValue {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"{name}={value} is above its MaxValue {spec['MaxValue']}"
    return None


def _as_string(value: Any) -> str:
    """How CloudFormation hands a scalar to a custom resource: "true", "90", "-1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(slots=True)
class Resolver:
    """Resolves property values with the parameters, pseudo parameters and the attributes it is told."""

    template: Mapping[str, Any]
    params: Mapping[str, str]
    pseudo: Mapping[str, str]
    # (logical id, attribute) -> value, for Fn::GetAtt; logical id -> value, for Ref to a resource.
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str, where: str = "Conditions") -> bool:
        if name not in self._conditions:
            declared = self.template.get("Conditions") or {}
            if name not in declared:
                raise TemplateError(f"{where}: unknown condition {name!r}")
            self._conditions[name] = self.truth(declared[name], f"Conditions.{name}")
        return self._conditions[name]

    def truth(self, node: Any, where: str) -> bool:
        """Evaluate a condition function (also used for Rules assertions)."""
        function, args = _function(node, where)
        if function == "Condition":
            return self.condition(str(args), where)
        if function == "Fn::Equals":
            left, right = _pair(args, where)
            return self.value(left, where) == self.value(right, where)
        if function == "Fn::Not":
            return not self.truth(_single(args, where), where)
        if function == "Fn::And":
            return all(self.truth(item, where) for item in _items(args, where))
        if function == "Fn::Or":
            return any(self.truth(item, where) for item in _items(args, where))
        raise TemplateError(f"{where}: the demo cannot evaluate {function}")

    def value(self, node: Any, where: str) -> str:
        """A scalar value, as a string."""
        resolved = self.resolve(node, where)
        if isinstance(resolved, (dict, list)) or resolved is _DROP:
            raise TemplateError(f"{where}: expected a single value, got {resolved!r}")
        return _as_string(resolved)

    def resolve(self, node: Any, where: str) -> Any:
        """Resolve a property tree; mappings keep their keys, AWS::NoValue entries disappear."""
        if isinstance(node, Mapping):
            if len(node) == 1:
                (key,) = node
                if key == "Ref" or str(key).startswith("Fn::"):
                    return self._intrinsic(str(key), node[key], where)
            resolved = {str(k): self.resolve(v, f"{where}.{k}") for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not _DROP}
        if isinstance(node, list):
            items = [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not _DROP]
        return node

    def _intrinsic(self, function: str, args: Any, where: str) -> Any:
        if function == "Ref":
            name = str(args)
            if name == NO_VALUE:
                return _DROP
            if name in self.params:
                return self.params[name]
            if name in self.pseudo:
                return self.pseudo[name]
            if name in self.refs:
                return self.refs[name]
            raise TemplateError(f"{where}: the demo cannot resolve Ref {name}")
        if function == "Fn::GetAtt":
            parts = args.split(".", 1) if isinstance(args, str) else list(args)
            if len(parts) != 2:
                raise TemplateError(f"{where}: malformed Fn::GetAtt {args!r}")
            key = (str(parts[0]), str(parts[1]))
            if key not in self.attributes:
                raise TemplateError(f"{where}: the demo cannot resolve Fn::GetAtt {key[0]}.{key[1]}")
            return self.attributes[key]
        if function == "Fn::If":
            items = _items(args, where)
            if len(items) != 3:
                raise TemplateError(f"{where}: Fn::If needs [condition, then, else]")
            # Only the chosen branch is resolved, as CloudFormation does.
            chosen = items[1] if self.condition(str(items[0]), where) else items[2]
            return self.resolve(chosen, where)
        raise TemplateError(f"{where}: the demo cannot resolve {function}")


def check_rules(resolver: Resolver) -> None:
    """Every Rules assertion whose RuleCondition holds must hold, as the console checks before creating."""
    rules: Mapping[str, Any] = resolver.template.get("Rules") or {}
    for name, rule in rules.items():
        where = f"Rules.{name}"
        if "RuleCondition" in rule and not resolver.truth(rule["RuleCondition"], where):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver.truth(assertion["Assert"], where):
                raise TemplateError(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")


def resource_properties(resolver: Resolver, logical_id: str) -> dict[str, Any]:
    """One resource's resolved Properties."""
    resources: Mapping[str, Any] = resolver.template.get("Resources") or {}
    if logical_id not in resources:
        raise TemplateError(f"the template has no resource {logical_id}")
    resolved = resolver.resolve(resources[logical_id].get("Properties") or {}, f"Resources.{logical_id}")
    return dict(resolved)


def find_resource(template: Mapping[str, Any], resource_type: str) -> str:
    """The logical id of the one resource of this type."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    found = [name for name, spec in resources.items() if spec.get("Type") == resource_type]
    if len(found) != 1:
        raise TemplateError(f"expected one {resource_type} resource in the template, found {len(found)}")
    return str(found[0])


def as_custom_resource_properties(properties: Mapping[str, Any]) -> dict[str, str]:
    """What a custom resource receives: every value a string (nested values are not expected here)."""
    out: dict[str, str] = {}
    for key, value in properties.items():
        if isinstance(value, (dict, list)):
            raise TemplateError(f"property {key} is not a scalar; the demo passes scalars only")
        out[key] = _as_string(value)
    return out


def _function(node: Any, where: str) -> tuple[str, Any]:
    if isinstance(node, Mapping) and len(node) == 1:
        (key,) = node
        return str(key), node[key]
    raise TemplateError(f"{where}: expected a condition function, got {node!r}")


def _items(args: Any, where: str) -> list[Any]:
    if not isinstance(args, list):
        raise TemplateError(f"{where}: expected a list, got {args!r}")
    return list(args)


def _pair(args: Any, where: str) -> tuple[Any, Any]:
    items = _items(args, where)
    if len(items) != 2:
        raise TemplateError(f"{where}: Fn::Equals needs two values")
    return items[0], items[1]


def _single(args: Any, where: str) -> Any:
    items = _items(args, where)
    if len(items) != 1:
        raise TemplateError(f"{where}: Fn::Not needs one condition")
    return items[0]
