"""Which AWS API calls a package makes, found in its source, and the IAM actions each one needs.

The scan is syntactic: every `<receiver>.<method>(...)` whose method is an operation of one of the
services the package talks to, plus `get_paginator("<operation>")`. The receiver's name tells the
service when an operation name exists in more than one (add_permission: SNS and Lambda). A call that
is an AWS operation but missing from the table fails the tests, so the table stays complete.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from .template_model import REPO

# IAM action and the kind of resource it is checked against, per (service, client method).
# Kinds: "any" (no resource-level permission), "load-balancer", "bucket" (any log bucket, reused ones
# included), "created-bucket" (calls the provisioner makes only on a bucket it creates: create, set up,
# expire, empty, delete; see provisioner/lifecycle.py, which runs them only when the bucket is its own),
# "object-cleanup" (deleting log files before deleting a created bucket), "topic", "subscription",
# "function", "log-group" (a log group named in LogGroupNames), "log-object", "secret", "parameter",
# "work-queue" (the stack's queue of work items).
Need = tuple[str, str]

PROVISIONER_CALLS: dict[tuple[str, str], tuple[Need, ...]] = {
    ("elbv2", "describe_load_balancers"): (("elasticloadbalancing:DescribeLoadBalancers", "any"),),
    ("elbv2", "describe_load_balancer_attributes"): (
        ("elasticloadbalancing:DescribeLoadBalancerAttributes", "any"),
    ),
    ("elbv2", "modify_load_balancer_attributes"): (
        ("elasticloadbalancing:ModifyLoadBalancerAttributes", "load-balancer"),
    ),
    ("elbv2", "describe_tags"): (("elasticloadbalancing:DescribeTags", "any"),),
    # Only the provisioner's own tag keys (test_provisioner_tags_load_balancers_only_with_its_own_keys).
    ("elbv2", "add_tags"): (("elasticloadbalancing:AddTags", "load-balancer"),),
    ("elbv2", "remove_tags"): (("elasticloadbalancing:RemoveTags", "load-balancer"),),
    # CreateBucket with ObjectOwnership (x-amz-object-ownership) also needs s3:PutBucketOwnershipControls.
    ("s3", "create_bucket"): (
        ("s3:CreateBucket", "created-bucket"),
        ("s3:PutBucketOwnershipControls", "created-bucket"),
    ),
    ("s3", "delete_bucket"): (("s3:DeleteBucket", "created-bucket"),),
    ("s3", "head_bucket"): (("s3:ListBucket", "bucket"),),
    ("s3", "get_bucket_location"): (("s3:GetBucketLocation", "bucket"),),
    ("s3", "get_bucket_encryption"): (("s3:GetEncryptionConfiguration", "bucket"),),
    ("s3", "put_bucket_encryption"): (("s3:PutEncryptionConfiguration", "created-bucket"),),
    ("s3", "get_public_access_block"): (("s3:GetBucketPublicAccessBlock", "bucket"),),
    ("s3", "put_public_access_block"): (("s3:PutBucketPublicAccessBlock", "created-bucket"),),
    ("s3", "get_bucket_ownership_controls"): (("s3:GetBucketOwnershipControls", "bucket"),),
    ("s3", "put_bucket_ownership_controls"): (("s3:PutBucketOwnershipControls", "created-bucket"),),
    ("s3", "get_bucket_lifecycle_configuration"): (("s3:GetLifecycleConfiguration", "created-bucket"),),
    ("s3", "put_bucket_lifecycle_configuration"): (("s3:PutLifecycleConfiguration", "created-bucket"),),
    # DeleteBucketLifecycle is authorised as s3:PutLifecycleConfiguration.
    ("s3", "delete_bucket_lifecycle"): (("s3:PutLifecycleConfiguration", "created-bucket"),),
    ("s3", "get_bucket_policy"): (("s3:GetBucketPolicy", "bucket"),),
    ("s3", "put_bucket_policy"): (("s3:PutBucketPolicy", "bucket"),),
    ("s3", "delete_bucket_policy"): (("s3:DeleteBucketPolicy", "bucket"),),
    ("s3", "get_bucket_notification_configuration"): (("s3:GetBucketNotification", "bucket"),),
    ("s3", "put_bucket_notification_configuration"): (("s3:PutBucketNotification", "bucket"),),
    ("s3", "get_bucket_tagging"): (("s3:GetBucketTagging", "bucket"),),
    ("s3", "put_bucket_tagging"): (("s3:PutBucketTagging", "created-bucket"),),
    # DeleteBucketTagging is authorised as s3:PutBucketTagging.
    ("s3", "delete_bucket_tagging"): (("s3:PutBucketTagging", "created-bucket"),),
    ("s3", "get_bucket_versioning"): (("s3:GetBucketVersioning", "bucket"),),
    ("s3", "put_bucket_versioning"): (("s3:PutBucketVersioning", "created-bucket"),),
    ("s3", "list_objects_v2"): (("s3:ListBucket", "bucket"),),
    ("s3", "list_objects"): (("s3:ListBucket", "bucket"),),
    ("s3", "list_object_versions"): (("s3:ListBucketVersions", "created-bucket"),),
    # DeleteObjects is checked per key, as DeleteObject, and as DeleteObjectVersion for keys with a version.
    ("s3", "delete_objects"): (
        ("s3:DeleteObject", "object-cleanup"),
        ("s3:DeleteObjectVersion", "object-cleanup"),
    ),
    ("s3", "delete_object"): (
        ("s3:DeleteObject", "object-cleanup"),
        ("s3:DeleteObjectVersion", "object-cleanup"),
    ),
    ("sns", "create_topic"): (("sns:CreateTopic", "topic"),),
    ("sns", "delete_topic"): (("sns:DeleteTopic", "topic"),),
    ("sns", "get_topic_attributes"): (("sns:GetTopicAttributes", "topic"),),
    ("sns", "set_topic_attributes"): (("sns:SetTopicAttributes", "topic"),),
    ("sns", "subscribe"): (("sns:Subscribe", "topic"),),
    ("sns", "unsubscribe"): (("sns:Unsubscribe", "subscription"),),
    ("sns", "list_subscriptions_by_topic"): (("sns:ListSubscriptionsByTopic", "topic"),),
    ("sns", "tag_resource"): (("sns:TagResource", "topic"),),
    ("sns", "list_tags_for_resource"): (("sns:ListTagsForResource", "topic"),),
    ("sns", "get_subscription_attributes"): (("sns:GetSubscriptionAttributes", "subscription"),),
    ("sns", "set_subscription_attributes"): (("sns:SetSubscriptionAttributes", "subscription"),),
    ("lambda", "add_permission"): (("lambda:AddPermission", "function"),),
    ("lambda", "remove_permission"): (("lambda:RemovePermission", "function"),),
    ("lambda", "get_policy"): (("lambda:GetPolicy", "function"),),
    ("lambda", "get_function"): (("lambda:GetFunction", "function"),),
    ("logs", "describe_subscription_filters"): (("logs:DescribeSubscriptionFilters", "log-group"),),
    ("logs", "put_subscription_filter"): (("logs:PutSubscriptionFilter", "log-group"),),
    ("logs", "delete_subscription_filter"): (("logs:DeleteSubscriptionFilter", "log-group"),),
    # No permission is needed to ask who you are.
    ("sts", "get_caller_identity"): (),
}

FORWARDER_CALLS: dict[tuple[str, str], tuple[Need, ...]] = {
    # GetObject with a VersionId is authorised as s3:GetObjectVersion.
    ("s3", "get_object"): (("s3:GetObject", "log-object"), ("s3:GetObjectVersion", "log-object")),
    ("s3", "head_object"): (("s3:GetObject", "log-object"),),
    ("secretsmanager", "get_secret_value"): (("secretsmanager:GetSecretValue", "secret"),),
    ("ssm", "get_parameter"): (("ssm:GetParameter", "parameter"),),
    ("sts", "get_caller_identity"): (),
    # The rest of a file an invocation cannot finish (forwarder/continuation.py).
    ("sqs", "send_message"): (("sqs:SendMessage", "work-queue"),),
}

# Calls of one module on other resources than the table's: (module, service, method) -> needs.
FORWARDER_MODULE_CALLS: dict[tuple[str, str, str], tuple[Need, ...]] = {
    # The geo databases named by GEOIP_DATABASE_S3_URI, never versioned.
    ("forwarder/geo.py", "s3", "get_object"): (("s3:GetObject", "geo-database"),),
}

# Services whose operations the scan recognises: the ones the code uses and the ones it might plausibly
# start using (a call to any of them then fails the tests until the table and the template cover it).
SCANNED_SERVICES = (
    "elbv2",
    "s3",
    "sns",
    "sqs",
    "lambda",
    "sts",
    "secretsmanager",
    "ssm",
    "kms",
    "cloudwatch",
    "logs",
    "events",
    "cloudformation",
    "iam",
    "ec2",
)
PROVISIONER_SERVICES = SCANNED_SERVICES
FORWARDER_SERVICES = SCANNED_SERVICES

# Words in a receiver expression that name the service it is a client of.
_RECEIVER_HINTS = {
    "elbv2": ("elbv2", "elb"),
    "s3": ("s3",),
    "sns": ("sns", "topic"),
    "lambda": ("lambda", "awslambda", "lam", "fn"),
    "sts": ("sts",),
    "secretsmanager": ("secretsmanager", "secrets"),
    "ssm": ("ssm",),
}


@dataclass(frozen=True, slots=True)
class Call:
    """One AWS API call site."""

    service: str
    method: str
    where: str


class ScanError(AssertionError):
    """A call site the scan cannot attribute to one service."""


@cache
def operations(service: str) -> frozenset[str]:
    """The snake_case client method names of one service, from botocore's own model."""
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(xform_name(name) for name in model.operation_names)


def _receiver_service(receiver: str, method: str, services: tuple[str, ...]) -> str | None:
    words = set(re.split(r"[^a-z0-9]+", receiver.lower()))
    for service in services:
        if method in operations(service) and words & set(_RECEIVER_HINTS.get(service, (service,))):
            return service
    return None


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of `<package>.a.b`, given the package root; None when it is not a module of the package."""
    parts = dotted.split(".")[1:]
    base = root.joinpath(*parts) if parts else root
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def lambda_modules(package: str, entry: str = "handler") -> list[Path]:
    """The package's modules the Lambda function can load: everything <package>.<entry> imports, transitively
    (dynamic imports of modules named in strings included).

    Command-line tools in the same package (which run with the user's own credentials) are left out.
    """
    root = REPO / package
    todo = [f"{package}.{entry}", package]
    seen: dict[str, Path] = {}
    while todo:
        dotted = todo.pop()
        path = _module_file(root, dotted)
        if dotted in seen or path is None:
            continue
        seen[dotted] = path
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # A module named in a string is imported dynamically (importlib.import_module).
                if re.fullmatch(rf"{package}(\.[A-Za-z_][A-Za-z0-9_]*)+", node.value):
                    todo.append(node.value)
            elif isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = dotted.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                if base.split(".")[0] != package:
                    continue
                todo.append(base)
                todo.extend(f"{base}.{a.name}" for a in node.names)
    return sorted(set(seen.values()))


def scan(package: str, services: tuple[str, ...]) -> list[Call]:
    """Every AWS call in the modules of <package> that its Lambda handler loads."""
    root = REPO / package
    module_names = {p.stem for p in root.rglob("*.py")}
    calls: list[Call] = []
    for path in lambda_modules(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        local_modules = module_names | _local_module_aliases(tree, package, module_names)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            method = node.func.attr
            receiver = ast.unparse(node.func.value)
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                method = str(node.args[0].value)
            if receiver in local_modules:
                continue  # a call into one of the package's own modules, e.g. bucket.delete_bucket(...)
            owners = [s for s in services if method in operations(s)]
            if not owners:
                continue
            service = owners[0] if len(owners) == 1 else _receiver_service(receiver, method, services)
            if service is None:
                raise ScanError(
                    f"{where}: {receiver}.{method}() is an operation of {owners}; name the client so its "
                    f"service shows (e.g. sns_client, lambda_client) or extend the receiver hints"
                )
            calls.append(Call(service, method, where))
    return calls


def _local_module_aliases(tree: ast.Module, package: str, module_names: set[str]) -> set[str]:
    """Names a file binds to the package's own modules (`from provisioner import bucket as bucket_mod`)."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (package, ""):
            aliases |= {a.asname or a.name for a in node.names if a.name in module_names}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.asname and a.name.startswith(f"{package}.")}
    return aliases


def needs(
    calls: list[Call],
    table: dict[tuple[str, str], tuple[Need, ...]],
    by_module: dict[tuple[str, str, str], tuple[Need, ...]] | None = None,
) -> dict[Need, list[str]]:
    """IAM needs of these calls, each with the call sites that need it; unmapped calls raise.

    ``by_module`` gives the needs of a module's calls that touch other resources than ``table`` says."""
    by_module = by_module or {}

    def needs_of(call: Call) -> tuple[Need, ...] | None:
        module = call.where.rsplit(":", 1)[0]
        return by_module.get((module, call.service, call.method), table.get((call.service, call.method)))

    unmapped = sorted({f"{c.service}.{c.method} ({c.where})" for c in calls if needs_of(c) is None})
    if unmapped:
        raise ScanError(f"AWS calls missing from the IAM table in tests/contract/aws_calls.py: {unmapped}")
    out: dict[Need, list[str]] = {}
    for call in calls:
        for need in needs_of(call) or ():
            out.setdefault(need, []).append(call.where)
    return out
