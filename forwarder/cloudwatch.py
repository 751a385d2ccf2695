"""CloudWatch Logs as a source: a subscription filter's event -> one unit of log events with their identity.

A subscription filter with a Lambda destination invokes the function asynchronously with
`{"awslogs": {"data": base64(gzip(JSON))}}`; the JSON is `{"messageType", "owner", "logGroup",
"logStream", "subscriptionFilters", "logEvents": [{"id", "timestamp", "message"}]}`. `messageType` is
DATA_MESSAGE, or CONTROL_MESSAGE when CloudWatch Logs checks that the destination is reachable (no log
data: skipped). An event id is unique within its log group and stays the same when Lambda retries the
event, so the record's event_id is derived from (owner, log group, log stream, event id). The whole event
is one unit: it succeeds or fails whole, and a failure is raised so that Lambda retries the event and then
hands it to the on-failure destination.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from forwarder.config import Config
from forwarder.metrics import ObjectStats
from forwarder.parsers import iso_from_ms
from forwarder.reader import Line, cut_line
from forwarder.records import identity_hash, iter_records
from forwarder.work import WorkItem

__all__ = ["CONTROL_MESSAGE", "DATA_MESSAGE", "LogEvent", "LogsBatch", "LogsDataError", "decode_awslogs"]

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"

_EVENT_ID_BYTES = 16  # 32 hex characters, like the ids of S3 lines
# A subscription delivers at most 1 MB of log events per invocation (256 KB per event); the decoded JSON
# is refused past this bound instead of inflating whatever the payload claims.
_MAX_DECODED_BYTES = 16 * 1024 * 1024


class LogsDataError(ValueError):
    """`awslogs.data` is not base64 of gzip of the JSON CloudWatch Logs sends."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One log event as CloudWatch Logs delivers it: its id, its time (epoch ms) and its message."""

    id: str
    timestamp: int
    message: str


@dataclass(frozen=True, slots=True)
class LogsBatch:
    """The log events of one subscription delivery, with the log group and stream they came from."""

    owner: str
    log_group: str
    log_stream: str
    message_type: str
    subscription_filters: tuple[str, ...]
    events: tuple[LogEvent, ...]
    size: int = 0  # bytes of the decoded JSON

    @property
    def uri(self) -> str:
        """How summaries and the redrive tool name this unit: account, log group and stream."""
        return f"cloudwatch-logs:{self.owner}:{self.log_group}:{self.log_stream}"


def decode_awslogs(awslogs: Any) -> LogsBatch:
    """The `awslogs` member of a subscription event, decoded; LogsDataError saying what is wrong."""
    data = awslogs.get("data") if isinstance(awslogs, Mapping) else None
    if not isinstance(data, str):
        raise LogsDataError("awslogs.data is missing or not a string")
    try:
        compressed = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise LogsDataError("awslogs.data is not base64") from None
    try:
        decoded = _gunzip(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise LogsDataError(f"awslogs.data is not gzip ({exc})") from None
    try:
        document = json.loads(decoded)
    except ValueError as exc:
        raise LogsDataError(f"awslogs.data does not hold JSON ({exc})") from None
    if not isinstance(document, dict):
        raise LogsDataError("awslogs.data does not hold a JSON object")
    message_type = str(document.get("messageType", ""))
    events = document.get("logEvents", [])
    if not isinstance(events, list):
        raise LogsDataError("logEvents is not a list")
    filters = document.get("subscriptionFilters", [])
    return LogsBatch(
        owner=str(document.get("owner", "")),
        log_group=str(document.get("logGroup", "")),
        log_stream=str(document.get("logStream", "")),
        message_type=message_type,
        subscription_filters=tuple(map(str, filters)) if isinstance(filters, list) else (),
        # A control message's one event (id "") is not log data.
        events=()
        if message_type == CONTROL_MESSAGE
        else tuple(_event(event, index) for index, event in enumerate(events)),
        size=len(decoded),
    )


def _gunzip(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj(31)
    decoded = inflater.decompress(compressed, _MAX_DECODED_BYTES)
    if inflater.unconsumed_tail:
        raise LogsDataError(f"awslogs.data inflates to more than {_MAX_DECODED_BYTES} bytes")
    if not inflater.eof:
        raise EOFError("the gzip stream is cut short")
    return decoded


def _event(event: Any, index: int) -> LogEvent:
    if not isinstance(event, Mapping):
        raise LogsDataError(f"logEvents[{index}] is not an object")
    event_id, timestamp, message = event.get("id"), event.get("timestamp"), event.get("message")
    if not isinstance(event_id, str) or not event_id:
        raise LogsDataError(f"logEvents[{index}] has no id")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise LogsDataError(f"logEvents[{index}] has no timestamp in epoch milliseconds")
    return LogEvent(event_id, timestamp, message if isinstance(message, str) else json.dumps(message))


@dataclass(frozen=True, slots=True)
class LogsBatchUnit:
    """A LogsBatch as the pipeline forwards it: its messages as lines, each with the log event's identity."""

    batch: LogsBatch

    def new_stats(self) -> ObjectStats:
        batch = self.batch
        return ObjectStats(
            bucket="",
            key="",
            origin={"log_group": batch.log_group, "log_stream": batch.log_stream, "owner": batch.owner},
            label=batch.uri,
        )

    def records(self, stats: ObjectStats, config: Config) -> Iterator[dict[str, Any]]:
        batch = self.batch
        stats.bytes_raw = batch.size
        custom = config.formats.format_for_log_group(batch.log_group)
        log_type = custom.name if custom is not None else config.formats.cloudwatch_format
        stats.log_type = log_type or "detected"
        limit = config.max_line_bytes
        ids = (batch.owner, batch.log_group, batch.log_stream)

        def provenance(record: dict[str, Any], number: int) -> None:
            event = batch.events[number - 1]
            record["log_group"] = batch.log_group
            record["log_stream"] = batch.log_stream
            record["owner"] = batch.owner
            record["event_time"] = iso_from_ms(event.timestamp)
            record["log_event_id"] = event.id
            record["event_id"] = identity_hash((*ids, event.id), _EVENT_ID_BYTES)

        return iter_records(
            (_line(event.message, limit) for event in batch.events),
            log_type=log_type,
            provenance=provenance,
            vpc_flow_fields=config.formats.vpc_flow_fields,
            parse=custom.parse if custom is not None else None,
            include_raw_line=config.include_raw_line,
        )

    def finish(self, stats: ObjectStats) -> None:
        """Nothing is left to report once every record was delivered."""

    def rest(self, stats: ObjectStats, next_line: int) -> WorkItem | None:
        """Never continued: a delivery is small, and it lives only in its event (a subscription invokes
        asynchronously, so its whole event is retried)."""
        return None


def _line(message: str, limit: int) -> Line:
    # Lambda and most agents end each message with a newline; the message is one line without it. A
    # multi-line message (a stack trace) stays one record.
    text = message[:-1] if message.endswith("\n") else message
    if len(text) > limit // 4:
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) > limit:
            return cut_line(raw, limit)
    return Line(text)
