"""What the forwarder reports: one JSON summary line per object, CloudWatch EMF metrics, JSON logs.

Metrics use the CloudWatch embedded metric format: a JSON document printed to stdout, which CloudWatch
Logs turns into metrics in namespace ``AlbLogOnboarding`` with the dimension ``FunctionName``. Alarm on
``ObjectsFailed`` > 0 (a file was not delivered: its event went to retry or the dead-letter queue),
``DeliveryFailures`` and ``UnparseableLines``. ``ObjectsContinued`` counts files an invocation handed on
to the next one part-way through (forwarder.continuation).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from forwarder import redaction
from forwarder.redaction import Redactor

NAMESPACE = "AlbLogOnboarding"

OUTCOME_OK = "ok"
OUTCOME_TEST_MODE = "test_mode"
OUTCOME_FAILED = "failed"
# The invocation ran out of time part-way through the object and queued the rest for the next one.
OUTCOME_CONTINUED = "continued"

# (metric name, ObjectStats attribute or property, unit).
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("LinesRead", "lines", "Count"),
    ("RecordsSent", "records_sent", "Count"),
    ("DuplicateRecords", "duplicates", "Count"),
    ("RejectedRecords", "rejected", "Count"),
    ("UnparseableLines", "unparseable", "Count"),
    ("TruncatedLines", "truncated", "Count"),
    ("DeliveryRetries", "retries", "Count"),
    ("DeliveryFailures", "delivery_failures", "Count"),
    ("ObjectsFailed", "objects_failed", "Count"),
    ("ObjectsContinued", "objects_continued", "Count"),
    ("BytesSent", "bytes_sent", "Bytes"),
    ("ObjectSeconds", "seconds", "Seconds"),
)


@dataclass(slots=True)
class ObjectStats:
    """Counters for one object, filled in while it streams through the pipeline."""

    bucket: str
    key: str
    log_type: str | None = None
    etag: str | None = None
    lines: int = 0
    parsed: int = 0
    unparseable: int = 0
    truncated: int = 0
    records_sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    bytes_raw: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    outcome: str = OUTCOME_OK
    error: str | None = None
    error_type: str | None = None
    delivery_failures: int = 0
    # A unit that is not an S3 object (CloudWatch Logs) names itself with these instead of bucket and key.
    origin: dict[str, str] | None = None
    label: str | None = None
    # An S3 object forwarded over several invocations: this one is number `invocation` of the chain, it
    # started at `start_line` and, when it handed the rest on, the next one starts at `continued_at`.
    invocation: int = 1
    start_line: int = 1
    continued_at: int | None = None
    # Records of the same object refused in earlier invocations of its chain (counted there, not here).
    rejected_earlier: int = 0

    @property
    def uri(self) -> str:
        return self.label or f"s3://{self.bucket}/{self.key}"

    @property
    def noun(self) -> str:
        """What the unit is, in messages: an S3 object, or a CloudWatch Logs delivery (which has a label)."""
        return "object" if self.label is None else "delivery"

    @property
    def objects_failed(self) -> int:
        return 1 if self.outcome == OUTCOME_FAILED else 0

    @property
    def objects_continued(self) -> int:
        return 1 if self.outcome == OUTCOME_CONTINUED else 0

    def summary(self) -> dict[str, Any]:
        """The fields of the per-object summary log line."""
        identity = self.origin if self.origin is not None else {"bucket": self.bucket, "key": self.key}
        data: dict[str, Any] = {
            **identity,
            "log_type": self.log_type,
            "lines": self.lines,
            "parsed": self.parsed,
            "unparseable": self.unparseable,
            "truncated": self.truncated,
            "records_sent": self.records_sent,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "batches": self.batches,
            "retries": self.retries,
            "bytes_raw": self.bytes_raw,
            "bytes_sent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
            "outcome": self.outcome,
        }
        if self.origin is None:
            data["invocation"] = self.invocation
            data["start_line"] = self.start_line
        if self.continued_at is not None:
            data["continued_at"] = self.continued_at
        if self.rejected_earlier:
            data["rejected_earlier"] = self.rejected_earlier
        if self.rejections:
            data["first_rejections"] = list(self.rejections)
        if self.error is not None:
            data["error_type"] = self.error_type
            data["error"] = self.error
        return data


def emf_document(stats: ObjectStats, *, function_name: str | None, timestamp_ms: int) -> dict[str, Any]:
    """An embedded-metric-format document for one object."""
    dimensions: list[list[str]] = [["FunctionName"]] if function_name else [[]]
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": unit} for name, _, unit in _METRICS],
                }
            ],
        },
    }
    if function_name:
        document["FunctionName"] = function_name
    for name, attribute, _ in _METRICS:
        value = getattr(stats, attribute)
        document[name] = round(value, 3) if isinstance(value, float) else value
    # Context for whoever reads the raw log line; not metrics (not listed under Metrics).
    document["log_type"] = stats.log_type
    document["outcome"] = stats.outcome
    return document


class Reporter:
    """Logs the summary line and prints the EMF document for each finished object."""

    def __init__(
        self,
        *,
        function_name: str | None = None,
        emit_metrics: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.function_name = function_name
        self.emit_metrics = emit_metrics
        self._stream = stream
        self._clock = clock

    def __call__(self, stats: ObjectStats) -> None:
        summary = stats.summary()
        log = logging.getLogger("forwarder.summary")
        level = logging.ERROR if stats.outcome == OUTCOME_FAILED else logging.INFO
        log.log(level, "%s %s %s", stats.noun, stats.outcome, stats.uri, extra={"summary": summary})
        if self.emit_metrics:
            document = emf_document(
                stats, function_name=self.function_name, timestamp_ms=int(self._clock() * 1000)
            )
            stream = self._stream or sys.stdout
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
            stream.flush()


# --- JSON logging ----------------------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: level, time, logger, message, request id and any ``extra`` fields.

    Last guard against a credential leak: every string in the line (message, extras, exception text,
    including what libraries log about a malformed answer) is masked for runs of the credentials the
    sender has used (``redaction.remember``).
    """

    def __init__(self, request_id: Callable[[], str | None] = lambda: None) -> None:
        super().__init__()
        self._request_id = request_id

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "level": record.levelname,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "aws_request_id", None) or self._request_id()
        if request_id:
            data["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in data and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        redact = redaction.known()
        if redact:
            data = _masked(data, redact)
        return json.dumps(data, default=str, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    """A plain text line (the command-line tools on a terminal), masked like ``JsonFormatter``'s."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        redact = redaction.known()
        return redact(line) if redact else line


def _masked(value: Any, redact: Redactor) -> Any:
    """``value`` with every string in it masked; objects json would turn into strings are turned first."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_masked(key, redact): _masked(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(item, redact) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def configure_logging(level: str, request_id: Callable[[], str | None] = lambda: None) -> None:
    """Send every log record through JsonFormatter at ``level``.

    The Lambda Python runtime installs a handler on the root logger; reuse it (so lines keep going to
    CloudWatch the runtime's way) and only replace its formatter. Outside Lambda, add a stderr handler.
    """
    root = logging.getLogger()
    formatter = JsonFormatter(request_id)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
    # botocore logs request details at DEBUG; keep it quieter unless asked.
    logging.getLogger("botocore").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("urllib3").setLevel(max(logging.getLevelName(level), logging.INFO))
