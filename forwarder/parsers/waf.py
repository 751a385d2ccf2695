"""AWS WAF logs: one JSON object per request, from CloudWatch Logs or from `aws-waf-logs-` S3 buckets.

Kept as WAF writes them, with three conveniences: `time` (ISO 8601) from `timestamp` (epoch ms);
`httpRequest.headers`, a list of `{"name", "value"}`, as a name -> value map (a repeated header's values
joined with ", ", as HTTP folds them); `labels`, a list of `{"name"}`, as a list of names.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, ParseError, iso_from_ms
from forwarder.parsers.json_message import parse_json_object

__all__ = ["parse_waf"]


def parse_waf(line: str) -> dict[str, Any]:
    """One WAF log line -> its fields, with `time`, a header map and label names."""
    document = parse_json_object(line)
    if "webaclId" not in document:
        raise FormatMismatchError("JSON, but not a WAF log (no webaclId)")
    timestamp = document.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ParseError(f"timestamp is not epoch milliseconds: {str(timestamp)[:40]!r}")
    try:
        document["time"] = iso_from_ms(timestamp)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"timestamp is not epoch milliseconds: {timestamp}") from None
    request = document.get("httpRequest")
    if isinstance(request, dict) and isinstance(request.get("headers"), list):
        headers: dict[str, str] = {}
        for header in request["headers"]:
            if isinstance(header, dict) and isinstance(header.get("name"), str):
                name, value = header["name"], str(header.get("value", ""))
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request["headers"] = headers
    labels = document.get("labels")
    if isinstance(labels, list):
        document["labels"] = [label["name"] if isinstance(label, dict) else label for label in labels]
    return document
