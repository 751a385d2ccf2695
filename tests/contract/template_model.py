"""The onboarding template as CloudFormation would see it: load, resolve intrinsics, evaluate IAM.

A small, strict model: every intrinsic function or IAM condition operator the template uses must be
understood here, and anything else raises, so a template change cannot silently slip past the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "templates" / "onboarding.yaml"

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_NAME = "web-logs"


class ModelError(AssertionError):
    """The template uses something this model does not understand."""


@cache
def load_template() -> dict[str, Any]:
    """The template decoded by cfn-lint (short-form tags such as !Sub become Fn::Sub)."""
    template, matches = decode(str(TEMPLATE_PATH))
    if matches or template is None:
        raise ModelError(f"template does not decode: {[str(m) for m in matches]}")
    return template


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Stack:
    """One deployment of the template: parameter values, pseudo parameters and resource attributes."""

    parameters: Mapping[str, str] = field(default_factory=dict)
    region: str = REGION
    account: str = ACCOUNT
    stack_name: str = STACK_NAME
    # Attributes of the custom resource (what the provisioner answers) and any override.
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=load_template)

    def __post_init__(self) -> None:
        declared = self.template["Parameters"]
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise ModelError(f"unknown parameters {sorted(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in self.parameters:
                values[name] = str(self.parameters[name])
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise ModelError(f"parameter {name} has no default and no value")
        self.values = values
        self._conditions: dict[str, bool] = {}

    # -- pseudo parameters, refs and attributes ---------------------------------------------------
    @property
    def partition(self) -> str:
        return partition_of(self.region)

    def pseudo(self, name: str) -> str | _NoValue:
        table: dict[str, str | _NoValue] = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/"
                f"{self.stack_name}/0a1b2c3d-1111-2222-3333-444455556666"
            ),
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name not in table:
            raise ModelError(f"unknown pseudo parameter {name}")
        return table[name]

    def resource(self, logical_id: str) -> dict[str, Any]:
        resources = self.template["Resources"]
        if logical_id not in resources:
            raise ModelError(f"reference to unknown resource {logical_id}")
        res = resources[logical_id]
        if "Condition" in res and not self.condition(res["Condition"]):
            raise ModelError(f"reference to {logical_id}, which this stack does not create")
        return res

    def exists(self, logical_id: str) -> bool:
        res = self.template["Resources"][logical_id]
        return "Condition" not in res or self.condition(res["Condition"])

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.values:
            return self.values[name]
        res = self.resource(name)
        p, r, a, s = self.partition, self.region, self.account, self.stack_name
        kind = res["Type"]
        if kind == "AWS::Lambda::Function":
            return f"{s}-{name}"
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(res["Properties"]["LogGroupName"])
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:{p}:secretsmanager:{r}:{a}:secret:{name}-AbCdEf"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{s}-{name}"
        if kind == "AWS::IAM::Role":
            return f"{s}-{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:{p}:sns:{r}:{a}:{s}-{name}"
        raise ModelError(f"no Ref model for {kind}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        res = self.resource(logical_id)
        p, r, a, s = self.partition, self.region, self.account, self.stack_name
        kind = res["Type"]
        if kind.startswith("Custom::"):
            raise ModelError(f"give Stack.attributes a value for {logical_id}.{attribute}")
        if (kind, attribute) == ("AWS::Lambda::Function", "Arn"):
            return f"arn:{p}:lambda:{r}:{a}:function:{s}-{logical_id}"
        if (kind, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            return f"arn:{p}:logs:{r}:{a}:log-group:{self.ref(logical_id)}:*"
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            return f"arn:{p}:sqs:{r}:{a}:{s}-{logical_id}"
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return f"{s}-{logical_id}"
        if (kind, attribute) == ("AWS::CloudWatch::Alarm", "Arn"):
            return f"arn:{p}:cloudwatch:{r}:{a}:alarm:{s}-{logical_id}"
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return f"arn:{p}:iam::{a}:role/{s}-{logical_id}"
        raise ModelError(f"no GetAtt model for {kind}.{attribute}")

    # -- conditions and intrinsic functions -------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self.template.get("Conditions", {})
            if name not in spec:
                raise ModelError(f"unknown condition {name}")
            value = self.resolve(spec[name])
            if not isinstance(value, bool):
                raise ModelError(f"condition {name} is not a boolean: {value!r}")
            self._conditions[name] = value
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        """Evaluate every intrinsic function in node, dropping AWS::NoValue from lists and maps."""
        if isinstance(node, Mapping):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref":
                    return self.ref(arg)
                if key.startswith("Fn::") or key == "Condition":
                    return self._function(key, arg)
            out = {}
            for k, v in node.items():
                value = self.resolve(v)
                if value is not NO_VALUE:
                    out[str(k)] = value
            return out
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if isinstance(node, bool):
            return node
        if isinstance(node, int | float):
            return str(node)
        return str(node) if isinstance(node, str) else node

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Condition":
            return self.condition(arg)
        if name == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(cond) else when_false)
        if name == "Fn::Equals":
            left, right = (self.resolve(v) for v in arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            (value,) = arg
            return not self._boolean(value)
        if name == "Fn::And":
            return all(self._boolean(v) for v in arg)
        if name == "Fn::Or":
            return any(self._boolean(v) for v in arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(logical_id, attribute)
        if name == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(str(v) for v in self.resolve(items))
        if name == "Fn::Split":
            delimiter, source = arg
            return str(self.resolve(source)).split(str(delimiter))
        if name == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Fn::Sub":
            return self._sub(arg)
        raise ModelError(f"intrinsic function {name} is not modelled")

    def _boolean(self, node: Any) -> bool:
        value = self.resolve(node)
        if not isinstance(value, bool):
            raise ModelError(f"expected a condition, got {value!r}")
        return value

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, raw = arg
            variables = {k: self.resolve(v) for k, v in raw.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            value = self.ref(name)
            if value is NO_VALUE:
                raise ModelError(f"${{{name}}} resolves to AWS::NoValue")
            return str(value)

        return _SUB_VAR.sub(replace, text).replace("${!", "${")

    # -- conveniences -------------------------------------------------------------------------------
    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resource(logical_id).get("Properties", {}))

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement that ends up attached to a role: inline policies and AWS::IAM::Policy resources."""
        statements: list[dict[str, Any]] = []
        for policy in self.properties(role_id).get("Policies", []):
            statements.extend(policy["PolicyDocument"]["Statement"])
        for logical_id, res in self.template["Resources"].items():
            if res["Type"] != "AWS::IAM::Policy" or not self.exists(logical_id):
                continue
            roles = res["Properties"].get("Roles", [])
            if {"Ref": role_id} in roles:
                statements.extend(self.properties(logical_id)["PolicyDocument"]["Statement"])
        return statements

    def rule_failures(self) -> list[str]:
        """AssertDescriptions of the template Rules these parameter values break (empty when accepted)."""
        failures = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self._boolean(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self._boolean(assertion["Assert"]):
                    failures.append(f"{name}: {assertion.get('AssertDescription', '')}")
        return failures


# -- IAM evaluation ------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard match: * is any run of characters (including / and :), ? is one character."""
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _value_matches(operator: str, actual: str, values: list[str]) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual in values
    if operator in ("StringLike", "ArnLike"):
        return any(_wildcard(v, actual) for v in values)
    raise ModelError(f"condition operator {operator} is not modelled")


def _condition_holds(block: Mapping[str, Any], context: Mapping[str, str | list[str]]) -> bool:
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, tests in block.items():
        for key, expected in tests.items():
            actual = lowered.get(key.lower())
            values = [str(v) for v in _as_list(expected)]
            qualifier, _, single = operator.rpartition(":")
            if qualifier == "ForAllValues":
                # Every value of a multivalued key must match; IAM counts an absent key as a match.
                ok = all(_value_matches(single, str(a), values) for a in _as_list(actual or []))
            elif qualifier:
                raise ModelError(f"condition operator {operator} is not modelled")
            elif actual is None:
                return False  # a key absent from the request never satisfies a positive operator
            else:
                ok = _value_matches(operator, str(actual), values)
            if not ok:
                return False
    return True


def allows(
    statements: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str | list[str]] | None = None,
) -> bool:
    """Whether an identity policy made of these statements allows action on resource (no Deny used)."""
    context = context or {}
    allowed = False
    for st in statements:
        if "NotAction" in st or "NotResource" in st:
            raise ModelError("NotAction/NotResource are not modelled")
        if not any(_wildcard(a, action, case_sensitive=False) for a in _as_list(st["Action"])):
            continue
        if not any(_wildcard(r, resource) for r in _as_list(st["Resource"])):
            continue
        if not _condition_holds(st.get("Condition", {}), context):
            continue
        if st["Effect"] == "Deny":
            return False
        allowed = True
    return allowed
