"""Lambda's platform lines in the text log format: START, END, REPORT (and INIT_START).

Lambda writes them to the function's log group around each invocation, tab-separated, e.g.
`REPORT RequestId: <id>\tDuration: 2.06 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t
Max Memory Used: 62 MB\tInit Duration: 229.14 ms` (Init Duration on a cold start only).
"""

from __future__ import annotations

import re
from typing import Any

from forwarder.parsers import FormatMismatchError

__all__ = ["parse_lambda_platform"]

_EVENTS = ("START", "END", "REPORT", "INIT_START")

# "<name>: <number> <unit>" pairs of a REPORT line. Longer names first, and each must follow a separator,
# so "Duration" never matches inside "Billed Duration".
_MEASURES = {
    "Billed Restore Duration": "billed_restore_duration_ms",
    "Restore Duration": "restore_duration_ms",
    "Billed Duration": "billed_duration_ms",
    "Init Duration": "init_duration_ms",
    "Max Memory Used": "max_memory_used_mb",
    "Memory Size": "memory_size_mb",
    "Duration": "duration_ms",
}
_MEASURE = re.compile(
    r"(?:^|\s)(" + "|".join(re.escape(name) for name in _MEASURES) + r"): (\d+(?:\.\d+)?) (ms|MB)\b"
)
_REQUEST_ID = re.compile(r"RequestId: (\S+)")
_VERSION = re.compile(r"Version: (\S+)")
_STATUS = re.compile(r"(?:^|\s)Status: (\S+)")
_ERROR_TYPE = re.compile(r"(?:^|\s)Error Type: (\S+)")
_RUNTIME = re.compile(r"Runtime Version: (\S+)")
_RUNTIME_ARN = re.compile(r"Runtime Version ARN: (\S+)")


def parse_lambda_platform(line: str) -> dict[str, Any]:
    """A START, END, REPORT or INIT_START line -> event, request_id and the measures it carries."""
    event = line.split(None, 1)[0] if line else ""
    if event not in _EVENTS:
        raise FormatMismatchError("not a Lambda START, END, REPORT or INIT_START line")
    record: dict[str, Any] = {"event": event}
    if event == "INIT_START":
        runtime, runtime_arn = _RUNTIME.search(line), _RUNTIME_ARN.search(line)
        record["runtime_version"] = runtime.group(1) if runtime else None
        record["runtime_version_arn"] = runtime_arn.group(1) if runtime_arn else None
        return record
    request_id = _REQUEST_ID.search(line)
    if request_id is None:
        raise FormatMismatchError(f"Lambda {event} line without RequestId")
    record["request_id"] = request_id.group(1)
    if event == "START":
        version = _VERSION.search(line)
        record["version"] = version.group(1) if version else None
    elif event == "REPORT":
        for name, value, unit in _MEASURE.findall(line):
            # Memory in whole MB, durations in ms with a fraction.
            record[_MEASURES[name]] = int(value) if unit == "MB" and value.isdigit() else float(value)
        if "duration_ms" not in record:
            raise FormatMismatchError("Lambda REPORT line without Duration")
        for pattern, field in ((_STATUS, "status"), (_ERROR_TYPE, "error_type")):
            found = pattern.search(line)
            if found:
                record[field] = found.group(1)
    return record
