"""VPC flow logs: the default version-2 format, or the custom field list a flow log was created with.

Space-separated values in the order of the flow log's format; `-` for a value that does not apply (a
NODATA or SKIPDATA record has only version, account, interface, start, end and log-status). A custom
format is given the way AWS shows it, `${version} ${vpc-id} ${srcaddr} ...` (plain names also work).
Field names become snake_case (`log-status` -> `log_status`); `time` is `start` in ISO 8601.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from forwarder.parsers import FormatMismatchError, ParseError, to_int

__all__ = ["DEFAULT_FIELDS", "field_list", "flow_parser", "parse_vpc_flow"]

# Default format (version 2), in order.
DEFAULT_FIELDS = (
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
)
# Fields AWS documents as numbers; every other field is a string.
_INTEGERS = frozenset(
    {
        "version",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "tcp-flags",
        "traffic-path",
    }
)
_FIELD = re.compile(r"\$\{([a-z][a-z0-9-]*)\}|([a-z][a-z0-9-]*)")


def field_list(format_string: str) -> tuple[str, ...]:
    """`${version} ${srcaddr} ...` (or `version srcaddr ...`) -> field names; ValueError on a bad token."""
    fields: list[str] = []
    for token in format_string.split():
        match = _FIELD.fullmatch(token)
        if match is None:
            raise ValueError(f"{token[:40]!r} is not a flow log field (expected ${{field-name}})")
        fields.append(match.group(1) or match.group(2))
    if not fields:
        raise ValueError("no fields")
    return tuple(fields)


def flow_parser(fields: tuple[str, ...]) -> Callable[[str], dict[str, Any]]:
    """A parse function for flow log records of exactly these fields, in this order."""
    names = tuple(field.replace("-", "_") for field in fields)
    integers = tuple(field in _INTEGERS for field in fields)
    start_at = fields.index("start") if "start" in fields else None
    count = len(fields)

    def parse(line: str) -> dict[str, Any]:
        values = line.split()
        if len(values) != count:
            raise FormatMismatchError(f"{len(values)} fields, the flow log format has {count}")
        record: dict[str, Any] = {}
        for name, number, value in zip(names, integers, values, strict=True):
            record[name] = to_int(value, name) if number else (None if value == "-" else value)
        if start_at is not None and record[names[start_at]] is not None:
            try:
                start = datetime.fromtimestamp(record[names[start_at]], UTC)
            except (OverflowError, OSError, ValueError):
                raise ParseError(f"start is not a Unix time: {values[start_at]!r}") from None
            record["time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        return record

    return parse


parse_vpc_flow = flow_parser(DEFAULT_FIELDS)
