"""Lambda's JSON log format: application lines and `platform.*` events, one JSON object per message.

With the function's LoggingConfig.LogFormat set to JSON, the runtime writes application logs as
`{"timestamp", "level", "message", "logger"?, "requestId"?, ...}` and Lambda writes its own events as
`{"time", "type": "platform.start|runtimeDone|report|...", "record": {...}}`; a `platform.report`
record carries `metrics` (durationMs, billedDurationMs, memorySizeMB, maxMemoryUsedMB, initDurationMs).
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError
from forwarder.parsers.json_message import parse_json_object

__all__ = ["parse_lambda_json"]

_METRICS = {
    "durationMs": "duration_ms",
    "billedDurationMs": "billed_duration_ms",
    "memorySizeMB": "memory_size_mb",
    "maxMemoryUsedMB": "max_memory_used_mb",
    "initDurationMs": "init_duration_ms",
    "restoreDurationMs": "restore_duration_ms",
    "billedRestoreDurationMs": "billed_restore_duration_ms",
}


def parse_lambda_json(line: str) -> dict[str, Any]:
    """One Lambda JSON log line -> its fields, `time` set, platform report metrics flattened."""
    document = parse_json_object(line)
    kind = document.get("type")
    if isinstance(kind, str) and kind.startswith("platform.") and isinstance(document.get("record"), dict):
        record = dict(document["record"])
        out: dict[str, Any] = {"time": document.get("time"), "event": kind}
        if "requestId" in record:
            out["request_id"] = record.pop("requestId")
        metrics = record.pop("metrics", None)
        if isinstance(metrics, dict):
            for metric, value in metrics.items():
                out[_METRICS.get(str(metric), str(metric))] = value
        if record:
            out["record"] = record
        return out
    if isinstance(document.get("timestamp"), str) and "level" in document and "message" in document:
        out = dict(document)
        out["time"] = document["timestamp"]
        return out
    raise FormatMismatchError("JSON, but neither a Lambda platform event nor a Lambda application log line")
