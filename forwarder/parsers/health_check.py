"""ALB health check log lines (files `health_check_log_...`) -> typed records.

Fields, in order (AWS docs, "Health check logs"): type (http, https, h2, grpc, lambda; others
tolerated), time, latency (seconds), target_addr (`ip:port`, or the function ARN for a Lambda
target), target_group_id, status (PASS or FAIL), status_code, reason_code (e.g. TargetError,
RequestTimedOut; `-` on success), then elb and ip_address where logged.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, dash_to_none, to_float, to_int

_FIELDS = (
    "type",
    "time",
    "latency",
    "target_addr",
    "target_group_id",
    "status",
    "status_code",
    "reason_code",
    "elb",
    "ip_address",
)
_MIN_FIELDS = 8


def parse_alb_health_check(line: str) -> dict[str, Any]:
    """Parse one ALB health check log line; raise ParseError when it is not one."""
    tokens = line.split()
    if len(tokens) < _MIN_FIELDS:
        raise FormatMismatchError(f"expected at least {_MIN_FIELDS} fields, found {len(tokens)}")
    if '"' in line:
        raise FormatMismatchError("unexpected double quote")
    record: dict[str, Any] = dict(zip(_FIELDS, dash_to_none(tokens), strict=False))
    record["latency"] = to_float(tokens[2], "latency")
    record["status_code"] = to_int(tokens[6], "status_code")
    if len(tokens) > len(_FIELDS):
        record["extra_fields"] = tokens[len(_FIELDS) :]
    return record
