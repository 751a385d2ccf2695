"""Custom resource properties: every value arrives as a string, "" means not set."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisioner.arns import (
    ArnError,
    Environment,
    FunctionArn,
    LoadBalancerArn,
    check_principal_arn,
    parse_function_arn,
    parse_load_balancer_arn,
)
from provisioner.errors import InvalidPropertiesError, show

LOAD_BALANCER_ARN = "LoadBalancerArn"
BUCKET_NAME = "BucketName"
PREFIX = "Prefix"
FORWARDER_FUNCTION_ARN = "ForwarderFunctionArn"
SUBSCRIPTION_ENDPOINT = "SubscriptionEndpoint"
READER_PRINCIPAL_ARN = "ReaderPrincipalArn"
RETAIN_BUCKET = "RetainBucket"
LOG_RETENTION_DAYS = "LogRetentionDays"
LOG_GROUP_NAMES = "LogGroupNames"
LOG_GROUP_FILTER_PATTERN = "LogGroupFilterPattern"
SERVICE_TOKEN = "ServiceToken"  # noqa: S105 - a property name, not a secret
SERVICE_TIMEOUT = "ServiceTimeout"  # read by CloudFormation itself

KNOWN = frozenset(
    {
        LOAD_BALANCER_ARN,
        BUCKET_NAME,
        PREFIX,
        FORWARDER_FUNCTION_ARN,
        SUBSCRIPTION_ENDPOINT,
        READER_PRINCIPAL_ARN,
        RETAIN_BUCKET,
        LOG_RETENTION_DAYS,
        LOG_GROUP_NAMES,
        LOG_GROUP_FILTER_PATTERN,
        SERVICE_TOKEN,
        SERVICE_TIMEOUT,
    }
)

MAX_RETENTION_DAYS = 36500
MAX_PREFIX_LENGTH = 512
# S3's "safe" key characters plus "/", without "*" and "?" which would turn the policy's Resource ARN
# into a wildcard wider than the log path.
_PREFIX_CHARS = re.compile(r"^[A-Za-z0-9!_.'()/-]+$")
# CloudWatch Logs log group names: 1-512 characters of letters, digits, '_', '-', '/', '.' and '#'.
_LOG_GROUP = re.compile(r"^[A-Za-z0-9_./#-]{1,512}$")
# One subscription filter and one invoke permission each: the forwarder's resource policy is limited to
# 20 KB, and each statement takes about 400 bytes.
MAX_LOG_GROUPS = 20
MAX_FILTER_PATTERN_LENGTH = 1024  # PutSubscriptionFilter's limit
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class Properties:
    """Validated properties of one request."""

    load_balancer: LoadBalancerArn
    bucket_name: str
    prefix: str
    forwarder: FunctionArn | None
    subscription_endpoint: str
    reader_principal_arn: str
    retain_bucket: bool
    log_retention_days: int | None
    log_groups: tuple[str, ...] = ()
    filter_pattern: str = ""


@dataclass(frozen=True, slots=True)
class LenientProperties:
    """Properties as Delete reads them: never refuses, falls back to the safe choice."""

    prefix: str
    forwarder_arn: str
    retain_bucket: bool
    log_groups: tuple[str, ...] = ()


def property_text(raw: Mapping[str, Any] | None, key: str) -> str:
    """A property as stripped text; an absent or null property (or no properties at all) reads as ""."""
    value = (raw or {}).get(key, "")
    if value is None:
        return ""
    return str(value).strip()


def prefix_problem(prefix: str, what: str = PREFIX) -> str | None:
    """Why a log prefix cannot be used, or None."""
    if not prefix:
        return None
    if "AWSLogs" in prefix:
        return f"{what} {show(prefix)} contains 'AWSLogs', which ALB does not allow; choose another prefix"
    if prefix.startswith("/") or prefix.endswith("/"):
        return f"{what} {show(prefix)} must not start or end with '/' (write e.g. 'alb/prod')"
    if "//" in prefix:
        return f"{what} {show(prefix)} must not contain '//'"
    if len(prefix) > MAX_PREFIX_LENGTH:
        return f"{what} is longer than {MAX_PREFIX_LENGTH} characters"
    if not _PREFIX_CHARS.match(prefix):
        return f"{what} {show(prefix)} may only contain letters, digits, '/' and !_.'()-"
    return None


def bucket_name_problem(name: str) -> str | None:
    """Why a bucket name is not a valid S3 bucket name, or None."""
    if not _BUCKET.match(name):
        return (
            f"BucketName {show(name)} is not a valid S3 bucket name (3-63 characters: lowercase letters, "
            f"digits, '.' and '-', starting and ending with a letter or digit)"
        )
    if ".." in name or ".-" in name or "-." in name:
        return f"BucketName {show(name)} is not a valid S3 bucket name (no '..', '.-' or '-.')"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return f"BucketName {show(name)} is formatted like an IP address, which S3 does not allow"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return f"BucketName {show(name)} uses a prefix or suffix S3 reserves"
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why SubscriptionEndpoint cannot be subscribed to, or None."""
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return f"SubscriptionEndpoint {redact_url(endpoint)} is not a URL"
    if parts.scheme != "https":
        return (
            f"SubscriptionEndpoint {redact_url(endpoint)} must be an https:// URL (SNS would send log "
            f"notifications in clear text over http)"
        )
    if not parts.hostname:
        return f"SubscriptionEndpoint {redact_url(endpoint)} has no host name"
    if any(c.isspace() for c in endpoint) or len(endpoint) > 2048:
        return "SubscriptionEndpoint must be a URL without spaces, at most 2048 characters"
    return None


def redact_url(url: str) -> str:
    """A URL safe to log: no user info, no query string or fragment (they may carry tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme:
        return show(url.split("?", maxsplit=1)[0], 80)
    shown = f"{parts.scheme}://{host}{port}{parts.path}"
    if parts.query or parts.fragment:
        shown += "?..."
    return show(shown, 200)


def split_log_groups(text: str) -> list[str]:
    """The comma-separated names as written (the template builds the role's ARNs from the same split)."""
    return text.split(",") if text else []


def log_groups_problems(names: list[str]) -> list[str]:
    """Why LogGroupNames cannot be used, one reason per problem."""
    problems = []
    bad = [n for n in names if not _LOG_GROUP.match(n)]
    if bad:
        problems.append(
            f"LogGroupNames must be log group names separated by commas only (no spaces), each 1-512 "
            f"letters, digits and _-/.#; not {', '.join(show(n, 60) for n in bad[:5])}"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"LogGroupNames names {', '.join(show(n, 60) for n in duplicates)} more than once")
    if len(names) > MAX_LOG_GROUPS:
        problems.append(f"LogGroupNames lists {len(names)} log groups; at most {MAX_LOG_GROUPS} are allowed")
    return problems


def parse_bool(value: str) -> bool | None:
    """'true'/'false' in any case, None for anything else."""
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def parse_properties(raw: Mapping[str, Any], env: Environment) -> Properties:
    """Validate every property and report all problems at once."""
    problems: list[str] = []

    lb_text = property_text(raw, LOAD_BALANCER_ARN)
    load_balancer: LoadBalancerArn | None = None
    if not lb_text:
        problems.append(
            "LoadBalancerArn is required: the ARN of your Application Load Balancer "
            "(arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>)"
        )
    else:
        try:
            load_balancer = parse_load_balancer_arn(lb_text, env)
        except ArnError as exc:
            problems.append(str(exc))

    bucket_name = property_text(raw, BUCKET_NAME)
    if bucket_name and (problem := bucket_name_problem(bucket_name)):
        problems.append(problem)

    prefix = property_text(raw, PREFIX)
    if problem := prefix_problem(prefix):
        problems.append(problem)

    forwarder: FunctionArn | None = None
    forwarder_text = property_text(raw, FORWARDER_FUNCTION_ARN)
    if forwarder_text:
        try:
            forwarder = parse_function_arn(forwarder_text, env)
        except ArnError as exc:
            problems.append(str(exc))

    endpoint = property_text(raw, SUBSCRIPTION_ENDPOINT)
    if endpoint and (problem := endpoint_problem(endpoint)):
        problems.append(problem)

    reader = property_text(raw, READER_PRINCIPAL_ARN)
    if reader:
        try:
            reader = check_principal_arn(reader, env)
        except ArnError as exc:
            problems.append(str(exc))

    retain_text = property_text(raw, RETAIN_BUCKET)
    retain = True if not retain_text else parse_bool(retain_text)
    if retain is None:
        problems.append(f"RetainBucket must be 'true' or 'false', not {show(retain_text, 40)}")

    days_text = property_text(raw, LOG_RETENTION_DAYS)
    days: int | None = None
    if days_text:
        if re.fullmatch(r"\d{1,6}", days_text) and 1 <= int(days_text) <= MAX_RETENTION_DAYS:
            days = int(days_text)
        else:
            problems.append(
                f"LogRetentionDays must be a whole number of days from 1 to {MAX_RETENTION_DAYS} "
                f"(or empty for no expiry), not {show(days_text, 40)}"
            )

    log_groups = split_log_groups(property_text(raw, LOG_GROUP_NAMES))
    problems += log_groups_problems(log_groups)
    if log_groups and not forwarder_text:
        problems.append(
            "LogGroupNames needs a forwarder to subscribe the log groups to: set IngestEndpoint, or leave "
            "LogGroupNames empty"
        )
    pattern = property_text(raw, LOG_GROUP_FILTER_PATTERN)
    if len(pattern) > MAX_FILTER_PATTERN_LENGTH:
        problems.append(f"LogGroupFilterPattern is longer than {MAX_FILTER_PATTERN_LENGTH} characters")

    if problems or load_balancer is None or retain is None:
        raise InvalidPropertiesError(problems)
    return Properties(
        load_balancer=load_balancer,
        bucket_name=bucket_name,
        prefix=prefix,
        forwarder=forwarder,
        subscription_endpoint=endpoint,
        reader_principal_arn=reader,
        retain_bucket=retain,
        log_retention_days=days,
        log_groups=tuple(log_groups),
        filter_pattern=pattern,
    )


def lenient_properties(raw: Mapping[str, Any] | None) -> LenientProperties:
    """What Delete needs; an unreadable RetainBucket keeps the bucket (the safe way to be wrong)."""
    raw = raw or {}
    retain = parse_bool(property_text(raw, RETAIN_BUCKET))
    return LenientProperties(
        prefix=property_text(raw, PREFIX),
        forwarder_arn=property_text(raw, FORWARDER_FUNCTION_ARN),
        retain_bucket=True if retain is None else retain,
        # Every well-formed name: Delete removes only filters and statements named for our generation.
        log_groups=tuple(
            dict.fromkeys(
                n for n in split_log_groups(property_text(raw, LOG_GROUP_NAMES)) if _LOG_GROUP.match(n)
            )
        ),
    )


def unknown_keys(raw: Mapping[str, Any]) -> list[str]:
    """Property names this version does not know (logged, not refused: newer templates may add some)."""
    return sorted(show(k, 60) for k in raw if k not in KNOWN)
