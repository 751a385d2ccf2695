"""Pure line parsers for the load balancer, Lambda, API Gateway, VPC flow and WAF log formats, plus
log-type detection (of an S3 object by its name, of a CloudWatch Logs message by its content).

A parse function takes one line (no newline) and returns a dict of typed fields, or raises
`ParseError` with a short reason (`FormatMismatchError` when the line does not have the format's
shape at all); `failure_reason` turns that into the reason sent with the raw line. Conventions
shared by every format:

- A value logged as `-` (bare) or `"-"` (quoted) becomes None.
- Addresses logged as `ip:port` are split at the last colon (ELB writes IPv6 unbracketed); a
  bracketed `[ip]:port` loses its brackets.
- Counters, ports and status codes are ints; durations are floats (seconds unless the field name
  says otherwise), so `-1` ("not applicable" in ALB logs) is the float -1.0.
- Timestamps stay ISO 8601 strings exactly as logged. Every format names its timestamp `time`
  (the Classic ELB and connection-log docs call it `timestamp`), so one field works across types.
- A line shorter than the newest format yields only the fields it has (absent, not null).
- Tokens after the last field we know are kept in `extra_fields` (AWS appends new fields at the
  end and asks parsers to ignore what they do not know; we keep them rather than lose data).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

__all__ = [
    "LOG_TYPES",
    "FormatMismatchError",
    "ParseError",
    "ParseFunction",
    "detect_log_type",
    "detect_message",
    "failure_reason",
    "iso_from_ms",
    "parser_for",
    "split_host_port",
    "split_request",
    "tokenize",
]

LOG_TYPES = (
    "alb_access",
    "alb_connection",
    "alb_health_check",
    "nlb_access",
    "classic_elb_access",
    "waf",
    "lambda_platform",
    "lambda_json",
    "apigateway_access",
    "vpc_flow",
    "json",
    "raw",
)

ParseFunction = Callable[[str], dict[str, Any]]

# log type -> (module, function); imported on first use so the package imports in microseconds.
_PARSERS: dict[str, tuple[str, str]] = {
    "alb_access": ("forwarder.parsers.alb", "parse_alb_access"),
    "alb_connection": ("forwarder.parsers.connection", "parse_alb_connection"),
    "alb_health_check": ("forwarder.parsers.health_check", "parse_alb_health_check"),
    "nlb_access": ("forwarder.parsers.nlb", "parse_nlb_access"),
    "classic_elb_access": ("forwarder.parsers.classic", "parse_classic_elb_access"),
    "waf": ("forwarder.parsers.waf", "parse_waf"),
    "lambda_platform": ("forwarder.parsers.lambda_platform", "parse_lambda_platform"),
    "lambda_json": ("forwarder.parsers.lambda_json", "parse_lambda_json"),
    "apigateway_access": ("forwarder.parsers.apigateway", "parse_apigateway_access"),
    "vpc_flow": ("forwarder.parsers.vpc_flow", "parse_vpc_flow"),
    "json": ("forwarder.parsers.json_message", "parse_json"),
    "raw": ("forwarder.parsers.raw", "parse_raw"),
}
# Formats whose parse function is built from configuration: log type -> (module, factory of the field list).
_CONFIGURED: dict[str, tuple[str, str]] = {
    "vpc_flow": ("forwarder.parsers.vpc_flow", "flow_parser"),
}

# Order matters for content detection: the most constrained formats first.
_DETECTION_ORDER = (
    "nlb_access",
    "alb_access",
    "alb_health_check",
    "alb_connection",
    "classic_elb_access",
    "waf",
)
# CloudWatch Logs messages: one log group can mix formats (a function's log group holds Lambda's platform
# lines and whatever the code prints), so each message is detected on its own, JSON shapes first.
_JSON_DETECTION_ORDER = ("waf", "lambda_json", "apigateway_access", "json")
_TEXT_DETECTION_ORDER = ("lambda_platform", "vpc_flow", "apigateway_access")

DEFAULT_LOG_TYPE = "alb_access"


# How a reason names each format: "not an ALB access log line: ...".
_FORMAT_NAMES = {
    "alb_access": "an ALB access log",
    "alb_connection": "an ALB connection log",
    "alb_health_check": "an ALB health check log",
    "nlb_access": "an NLB access log",
    "classic_elb_access": "a Classic ELB access log",
    "waf": "a WAF log",
    "lambda_platform": "a Lambda platform log",
    "lambda_json": "a Lambda JSON log",
    "apigateway_access": "an API Gateway access log",
    "vpc_flow": "a VPC flow log",
    "json": "a JSON log",
    "raw": "a raw log",
}


class ParseError(ValueError):
    """A line does not have the shape of its log format; the message is a short reason."""


class FormatMismatchError(ParseError):
    """The line is not of the format at all (wrong field count, quoting or type), not one broken field."""


def parser_for(log_type: str, *, vpc_flow_fields: tuple[str, ...] | None = None) -> ParseFunction:
    """Return the pure parse function for a log type; unknown type -> ValueError naming the valid ones.

    `vpc_flow_fields` is a custom flow log format (its field names, in order) instead of the default.
    """
    if vpc_flow_fields is not None and log_type in _CONFIGURED:
        return _configured(log_type, vpc_flow_fields)
    try:
        module_name, function_name = _PARSERS[log_type]
    except KeyError:
        raise ValueError(f"unknown log type {log_type!r}; valid types: {', '.join(LOG_TYPES)}") from None
    parse: ParseFunction = getattr(importlib.import_module(module_name), function_name)
    return parse


@cache
def _configured(log_type: str, fields: tuple[str, ...]) -> ParseFunction:
    """Built once per configuration, not once per line."""
    module_name, factory_name = _CONFIGURED[log_type]
    parse: ParseFunction = getattr(importlib.import_module(module_name), factory_name)(fields)
    return parse


def detect_message(
    message: str, *, vpc_flow_fields: tuple[str, ...] | None = None
) -> tuple[str, dict[str, Any]]:
    """The log type of one CloudWatch Logs message and its parsed fields; ("raw", {"raw": ...}) if none fits.

    A message is of a format when that format's parser takes it whole, so detection never yields a
    parse error: a message of no known format is sent raw, which is not a failure.
    """
    order = _JSON_DETECTION_ORDER if message.startswith("{") else _TEXT_DETECTION_ORDER
    for log_type in order:
        try:
            return log_type, parser_for(log_type, vpc_flow_fields=vpc_flow_fields)(message)
        except Exception:  # noqa: BLE001, S112 -- not this format (a parser bug on an odd message included)
            continue
    return "raw", {"raw": message}


def detect_log_type(key: str, first_line: str | None) -> str:
    """Log type of an object: by its file name first, by the content of its first line otherwise.

    Falls back to "alb_access" when neither is conclusive: the lines are then still sent, as
    unparseable records, so nothing is lost while the mismatch is visible downstream.
    """
    by_name = _type_from_name(key)
    if by_name is not None:
        return by_name
    if first_line:
        by_content = _type_from_content(first_line)
        if by_content is not None:
            return by_content
    return DEFAULT_LOG_TYPE


def _type_from_name(key: str) -> str | None:
    # File names (AWS docs, "Access logs for your Application Load Balancer" and siblings):
    #   ALB access      <acct>_elasticloadbalancing_<region>_app.<name>.<id>_<end>_<ip>_<rand>.log.gz
    #   ALB connection  conn_log_<acct>_elasticloadbalancing_<region>_app.<name>.<id>_....log.gz
    #   ALB health      health_check_log_<acct>_elasticloadbalancing_<region>_app.<name>.<id>_....log.gz
    #   NLB access      <acct>_elasticloadbalancing_<region>_net.<name>.<id>_<end>_<rand>.log.gz
    #   Classic ELB     <acct>_elasticloadbalancing_<region>_<name>_<end>_<ip>_<rand>.log
    #   WAF             AWSLogs/<acct>/WAFLogs/<region>/<web-acl>/yyyy/mm/dd/HH/mm/
    #                   <acct>_waflogs_<region>_<web-acl>_<time>_<hash>.log.gz
    name = key.rsplit("/", 1)[-1]
    if "_waflogs_" in name or "/WAFLogs/" in key:
        return "waf"
    if name.startswith("conn_log_"):
        return "alb_connection"
    if name.startswith("health_check_log_"):
        return "alb_health_check"
    marker = "_elasticloadbalancing_"
    at = name.find(marker)
    if at < 0:
        return None
    after_region = name[at + len(marker) :].split("_", 1)
    if len(after_region) < 2:
        return None
    rest = after_region[1]
    if rest.startswith("app."):
        return "alb_access"
    if rest.startswith("net."):
        return "nlb_access"
    # Classic load balancer names allow only letters, digits and hyphens: no "app."/"net." prefix.
    return "classic_elb_access"


def failure_reason(log_type: str, line: str, error: ParseError) -> str:
    """Why `line` of a `log_type` object did not parse, as sent in `parse_error`.

    A line of another log (CloudFront, S3 access, VPC flow, WAF, another ELB format) is named for
    the log it looks like; one that does not have the format's shape at all says so; a line of
    the right shape keeps the parser's precise reason (the field that is broken). A custom format's
    parser names the format in its reasons itself.
    """
    name = _FORMAT_NAMES.get(log_type)
    if name is None:
        return str(error)
    for other, pattern in _other_logs():
        if other != name and pattern.match(line):
            return f"not {name} line: looks like {other} line"
    if isinstance(error, FormatMismatchError):
        return f"not {name} line: {error}"
    return str(error)


@cache
def _other_logs() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """What lines of the logs found next to ELB logs start like; compiled on the first failed line only."""
    iso_time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*"
    return tuple(
        (name, re.compile(pattern))
        for name, pattern in (
            (_FORMAT_NAMES["nlb_access"], rf"tls \d+\.\d+ {iso_time} net/"),
            (_FORMAT_NAMES["alb_access"], rf"(?:http|https|h2|grpcs|ws|wss) {iso_time} app/"),
            (_FORMAT_NAMES["alb_health_check"], rf"\S+ {iso_time} [\d.]+ \S+ \S+ (?:PASS|FAIL) "),
            (_FORMAT_NAMES["alb_connection"], rf"{iso_time} [\da-fA-F.:]+ \d+ \d+ "),
            (_FORMAT_NAMES["classic_elb_access"], rf"{iso_time} [A-Za-z0-9-]+ \S+:\d+ "),
            # CloudFront standard logs: tab-separated, date and time first; or their #Version/#Fields header.
            ("a CloudFront access log", r"(?:\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\t|#Version: |#Fields: date\b)"),
            # S3 server access logs: owner's 64-hex canonical id, bucket, [06/Feb/2019:00:00:38 +0000].
            ("an S3 server access log", r"[0-9a-f]{64} \S+ \[\d\d/[A-Z][a-z]{2}/\d{4}:"),
            # VPC flow logs (default format): version, account id, interface id; or their header line.
            ("a VPC flow log", r"(?:\d+ (?:\d{12}|unknown|-) (?:eni-[0-9a-f]+|-) |version account-id )"),
            # AWS WAF logs: one JSON object per line, naming the web ACL.
            ("a WAF log", r'\{.*"webaclId":'),
        )
    )


def _type_from_content(line: str) -> str | None:
    for log_type in _DETECTION_ORDER:
        try:
            parser_for(log_type)(line)
        except ParseError:
            continue
        return log_type
    return None


# ---------------------------------------------------------------------------------------------
# Helpers shared by the format modules. Kept small and allocation-light: they run once per line.


def tokenize(line: str) -> list[str]:
    """Split a line into fields: bare tokens split on spaces, each quoted value kept whole.

    AWS never writes a raw double quote inside a quoted value (it logs \\x22), so splitting on '"'
    gives bare segments at even indexes and quoted values at odd ones. Spaces inside quoted values
    (user agents, URLs with raw spaces) are kept exactly.
    """
    parts = line.split('"')
    if not len(parts) & 1:
        raise FormatMismatchError("unbalanced double quotes")
    tokens = parts[0].split()
    for i in range(1, len(parts), 2):
        tokens.append(parts[i])
        bare = parts[i + 1]
        if bare != " ":
            tokens += bare.split()
    return tokens


def split_host_port(value: str, what: str) -> tuple[str | None, int | None]:
    """`ip:port` or `[ip]:port` -> (ip, port); `-` -> (None, None).

    ELB logs IPv6 unbracketed, so the port follows the LAST colon; a bracketed address (as other
    tools write it) loses its brackets.
    """
    if value == "-":
        return None, None
    if value.startswith("["):
        end = value.find("]:")
        host, at = value[1:end], end + 1
        if end < 2:
            raise ParseError(f"{what} is not [ip]:port: {value[:60]!r}")
    else:
        at = value.rfind(":")
        host = value[:at]
        if at <= 0:
            raise ParseError(f"{what} is not ip:port: {value[:60]!r}")
    try:
        port = int(value[at + 1 :])
    except ValueError:
        raise ParseError(f"{what} port is not a number: {value[:60]!r}") from None
    return host, port


def split_request(request: str) -> tuple[str | None, str | None, str | None]:
    """`METHOD URL PROTOCOL` -> (method, url, protocol); `-` or empty parts -> None.

    The method ends at the first space and the protocol starts after the last one, so a URL with
    raw spaces stays whole. Malformed forms AWS logs, such as `- - -`, `- http://host:80- -` and
    `- http://host:80-/ ` (trailing space, empty protocol), parse without error.
    """
    first = request.find(" ")
    if first < 0:
        return None, (None if request in ("", "-") else request), None
    last = request.rfind(" ")
    method = request[:first]
    if first == last:
        url = request[first + 1 :]
        protocol = ""
    else:
        url = request[first + 1 : last]
        protocol = request[last + 1 :]
    return (
        None if method in ("", "-") else method,
        None if url.strip("- ") == "" else url,
        None if protocol in ("", "-") else protocol,
    )


def to_int(value: str, what: str) -> int | None:
    """int, or None for `-`; anything else -> ParseError naming the field."""
    if value == "-":
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"{what} is not an integer: {value[:40]!r}") from None


def to_float(value: str, what: str) -> float | None:
    """float, or None for `-`; anything else -> ParseError naming the field."""
    if value == "-":
        return None
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"{what} is not a number: {value[:40]!r}") from None


def iso_from_ms(timestamp_ms: int) -> str:
    """Epoch milliseconds -> ISO 8601 UTC with milliseconds and Z (2023-05-06T06:46:19.981Z)."""
    moment = datetime.fromtimestamp(timestamp_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def dash_to_none(values: list[str]) -> list[str | None]:
    """Same list with every `-` replaced by None."""
    return [None if v == "-" else v for v in values]
