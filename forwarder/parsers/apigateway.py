"""API Gateway access logs, in the console's Common Log Format and JSON variants.

The stage's access log format is chosen by the user; these are the two AWS offers ready-made (and that
the CLI and CDK default to). CLF: `$context.identity.sourceIp $context.identity.caller
$context.identity.user [$context.requestTime]"$context.httpMethod $context.resourcePath $context.protocol"
$context.status $context.responseLength $context.requestId $context.extendedRequestId` (no space before
the quote; older stages end at requestId). JSON: an object with `requestId` and `httpMethod` (REST) or
`routeKey` (HTTP APIs), `status`, `requestTime` and more; API Gateway writes every value as a string and
`-` for a value it does not have.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from forwarder.parsers import FormatMismatchError, ParseError
from forwarder.parsers.json_message import parse_json_object

__all__ = ["parse_apigateway_access"]

_CLF = re.compile(
    r"(?P<source_ip>\S+) (?P<caller>\S+) (?P<user>\S+) \[(?P<request_time>[^\]]+)\] ?"
    r'"(?P<method>\S+) (?P<resource_path>\S+) (?P<protocol>[^"]+)" (?P<status>\d{3}|-) '
    r"(?P<response_length>\d+|-) (?P<request_id>\S+)(?: (?P<extended_request_id>\S+))?"
)
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"  # $context.requestTime, e.g. 12/Mar/2024:10:15:30 +0000
# JSON fields API Gateway logs as strings that are numbers ($context.status, ...).
_JSON_INTEGERS = frozenset(
    {
        "status",
        "responseLength",
        "integrationStatus",
        "integrationLatency",
        "responseLatency",
        "requestTimeEpoch",
    }
)


def parse_apigateway_access(line: str) -> dict[str, Any]:
    """One access log line (CLF or JSON) -> typed fields plus `time` in ISO 8601."""
    if line.startswith("{"):
        return _json(line)
    match = _CLF.fullmatch(line)
    if match is None:
        raise FormatMismatchError("not the API Gateway CLF access log shape")
    record: dict[str, Any] = {
        name: (None if value == "-" else value) for name, value in match.groupdict().items()
    }
    for name in ("status", "response_length"):
        if record[name] is not None:
            record[name] = int(record[name])
    record["time"] = _iso(match["request_time"])
    return record


def _json(line: str) -> dict[str, Any]:
    document = parse_json_object(line)
    if "requestId" not in document or not ("httpMethod" in document or "routeKey" in document):
        raise FormatMismatchError(
            "JSON, but not an API Gateway access log (requestId and httpMethod or routeKey)"
        )
    record: dict[str, Any] = {}
    for name, value in document.items():
        if value == "-":
            record[name] = None
        elif name in _JSON_INTEGERS and isinstance(value, str):
            try:
                record[name] = int(value)
            except ValueError:
                raise ParseError(f"{name} is not an integer: {value[:40]!r}") from None
        else:
            record[name] = value
    request_time = record.get("requestTime")
    if isinstance(request_time, str):
        record["time"] = _iso(request_time)
    return record


def _iso(value: str) -> str:
    try:
        moment = datetime.strptime(value, _CLF_TIME)
    except ValueError:
        raise ParseError(f"requestTime is not dd/Mon/yyyy:HH:MM:SS +zzzz: {value[:40]!r}") from None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
