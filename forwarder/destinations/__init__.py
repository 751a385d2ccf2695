"""Destinations: how records become request bodies for one kind of intake, and how its answer is read.

A destination is an encoder plus a response reader; the transport, retries, deadline and counters are
shared (forwarder.sender, forwarder.pipeline). Each one is a module with a class that has:

- ``framing``: the bytes before, between and after the encoded records of one body (or a function that
  writes the body from them), and ``content_type``;
- ``encode(record) -> bytes``: one record as it appears in the body (records are then cut into batches
  within the destination's limits, and a retry body for some of them is cut from the batch's buffer);
- ``read_response(response, sent) -> Verdict``: every HTTP answer (2xx included, with its bounded body)
  read once, per item and by position where the intake answers per item.

The verdict says what the shared retry policy (``sender.plan_retry``) acts on: delivered, retry these
items (after N s), rejected this many items with reasons (by position where the intake says which), and
how many were duplicates already there. Shapes later destinations fit into:

- OTLP's partial success (200 with ``rejectedLogRecords``: a count and one message, no positions) is
  ``rejected`` with one position-less ``Rejection``: counted, never retried. Its retryable statuses
  (429, 502, 503, 504 only) are the destination's own ``status_verdict(..., retryable=...)``.
- Splunk HEC with indexer acknowledgement answers 200 with an ``ackId``: a verdict may then name a
  confirmation request (POST ``/services/collector/ack``) that the sender repeats within ``seconds_left``
  and the destination reads like any answer; an ack still pending when the time is up becomes a
  ``retry`` of the whole batch (transient), never "delivered".

Destinations are registered in one lazy table, like the parsers, and chosen once from ``OUTPUT_FORMAT``.
Intakes with limits of their own (entries and bytes per request, bytes per entry) declare them in
``_LIMITS``: batches are cut within them unless ``BATCH_MAX_*`` says otherwise, and a record larger than
its intake takes is sent truncated and flagged (``fit_entry``), never dropped.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from forwarder import jsonutil

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

__all__ = [
    "DEFAULT_OUTPUT_FORMAT",
    "OUTPUT_FORMATS",
    "Confirmation",
    "Destination",
    "Framing",
    "Limits",
    "Rejection",
    "Verdict",
    "destination_for",
    "fit_entry",
    "is_retryable_status",
    "limits_for",
    "line_time_ns",
    "record_time_ns",
    "short_reason",
    "status_phrase",
    "status_verdict",
]

# format -> (module, class); imported on first use, so a format's code loads only when it is chosen.
_DESTINATIONS: dict[str, tuple[str, str]] = {
    "json": ("forwarder.destinations.envelope", "JsonEnvelope"),
    "ndjson": ("forwarder.destinations.ndjson", "Ndjson"),
    "elasticsearch": ("forwarder.destinations.elasticsearch", "ElasticsearchBulk"),
    "splunk_hec": ("forwarder.destinations.splunk_hec", "SplunkHec"),
    "loki": ("forwarder.destinations.loki", "LokiPush"),
    "datadog": ("forwarder.destinations.datadog", "DatadogLogs"),
    "otlp": ("forwarder.destinations.otlp", "otlp_destination"),
}

_REASON_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

OUTPUT_FORMATS: tuple[str, ...] = tuple(_DESTINATIONS)
DEFAULT_OUTPUT_FORMAT = "json"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may hold: records, uncompressed bytes, and bytes per encoded record (None: any)."""

    max_records: int = 5000
    max_bytes: int = 4 * 1024 * 1024
    max_entry_bytes: int | None = None


# Many HTTP log intakes cap a request at 5 MB of uncompressed JSON (Datadog, Cloudflare) or 2 MB
# (Coralogix bulk); 4 MiB stays under the first. An ALB access record is ~1-1.5 KB as JSON, so the byte
# limit usually closes a batch before 5000 records.
GENERIC_LIMITS = Limits()
_LIMITS: dict[str, Limits] = {
    # HEC's max_content_length is 1 MB on Splunk Cloud and on Enterprise before 8.x (800 MB after): a
    # request and so an event stay within 1 MB by default.
    "splunk_hec": Limits(max_bytes=1_000_000, max_entry_bytes=1_000_000),
    # Loki refuses a line over max_line_size (256 KB by default), and a push larger than the tenant's
    # ingestion_burst_size_mb (6 MB by default) is refused 429 every time; Promtail sends 1 MiB batches.
    "loki": Limits(max_bytes=1024 * 1024, max_entry_bytes=256 * 1024),
    # Datadog's logs intake: at most 1000 entries and 5 MB uncompressed per request, 1 MB per entry.
    "datadog": Limits(max_records=1000, max_bytes=5_000_000, max_entry_bytes=1_000_000),
}


def limits_for(output_format: str) -> Limits:
    """The request limits the intake of ``output_format`` documents (the generic ones when it has none)."""
    return _LIMITS.get(output_format, GENERIC_LIMITS)


@dataclass(frozen=True, slots=True)
class Framing:
    """The bytes around and between the encoded records of one request body.

    ``assemble``, when set, writes the body from the encoded records instead (Loki: the entries of equal
    labels in one stream), given them laid out (prefix, then the records joined by the separator) and the
    offset of each. Batches are still cut, and retry bodies cut from their buffer, by the records laid
    out with prefix, separator and suffix, so an assembled body must not be larger than that.
    """

    prefix: bytes = b""
    separator: bytes = b""
    suffix: bytes = b""
    assemble: Callable[[bytearray, Sequence[int]], bytes | bytearray] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the intake refused an item for good (a mapping conflict, say), and its position when known."""

    position: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A request that asks the intake whether an accepted body is durable yet (HEC's ack endpoint).

    The sender waits ``wait`` seconds, POSTs ``body`` (uncompressed JSON) to ``url`` and hands the answer
    to ``read``, repeating while the verdict names another confirmation and the invocation has time.
    """

    url: str
    body: bytes
    read: Callable[[HttpResponse, Batch], Verdict]
    wait: float
    pending: str  # what is still unconfirmed, for the message when time runs out


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one response means for the items of the body it answers.

    Items neither retried nor rejected are delivered (``duplicates`` of them were already there).
    ``rejections`` give the reasons of some or all of the ``rejected`` items. ``refused`` is a permanent
    answer to the whole request (a 4xx that retrying will not fix).
    """

    retry: tuple[int, ...] = ()
    failure: str = ""
    after: float | None = None
    rejected: int = 0
    rejections: tuple[Rejection, ...] = ()
    duplicates: int = 0
    refused: bool = False
    confirm: Confirmation | None = None

    @property
    def delivered(self) -> bool:
        return not self.retry and not self.refused and self.confirm is None


DELIVERED = Verdict()


class Destination(Protocol):
    """One kind of intake: its body layout, its encoder and its response reader."""

    @property
    def name(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def framing(self) -> Framing: ...

    @property
    def extra_headers(self) -> tuple[tuple[str, str], ...]:
        """Headers every request to the intake carries besides content type, encoding and auth."""
        ...

    @property
    def accepts(self) -> str:
        """What the intake must accept, for error hints: 'gzip JSON {"logs": [...]}'."""
        ...

    def encode(self, record: dict[str, Any]) -> bytes: ...

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict: ...


def destination_for(config: Config) -> Destination:
    """The destination ``config.output_format`` names; unknown -> ValueError naming the valid ones."""
    try:
        module_name, class_name = _DESTINATIONS[config.output_format]
    except KeyError:
        raise ValueError(
            f"unknown output format {config.output_format!r}; valid formats: {', '.join(OUTPUT_FORMATS)}"
        ) from None
    factory = getattr(importlib.import_module(module_name), class_name)
    destination: Destination = factory(config)
    return destination


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth another try; everything else is not."""
    return status in (408, 429) or 500 <= status <= 599


def status_verdict(
    response: HttpResponse, sent: Batch, *, retryable: Callable[[int], bool] = is_retryable_status
) -> Verdict | None:
    """The verdict of a non-2xx answer, which concerns the whole request; None for a 2xx."""
    status = response.status
    if 200 <= status <= 299:
        return None
    if retryable(status):
        failure = f"HTTP {status} {status_phrase(status)}".rstrip()
        return Verdict(retry=tuple(range(sent.records)), failure=failure)
    return Verdict(refused=True)


def short_reason(text: str) -> str:
    """Text an intake sent as a reason, on one line and at most 200 characters."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def status_phrase(status: int) -> str:
    """'Bad Request' for 400; '' for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# Fields a truncated record keeps whole: where it came from and what envelopes are built from.
_KEPT_WHOLE = (
    "time",
    "elb",
    "log_type",
    "s3_bucket",
    "s3_key",
    "line_number",
    "log_group",
    "log_stream",
    "owner",
    "event_time",
    "log_event_id",
    "event_id",
    "parse_error",
)


def fit_entry(record: dict[str, Any], encode: Callable[[dict[str, Any]], bytes], limit: int) -> bytes:
    """``record`` encoded within ``limit`` bytes: as it is if it fits, else as its provenance fields plus
    ``raw`` (the record's JSON, cut) and ``truncated: true``, as the reader flags a line cut at its limit."""
    data = encode(record)
    if len(data) <= limit:
        return data
    text = jsonutil.dumps(record).decode("utf-8", "replace")
    kept = {name: record[name] for name in _KEPT_WHOLE if name in record}
    base = len(encode({**kept, "raw": "", "truncated": True}))
    room = limit - base  # characters to keep; escaping and UTF-8 may take several bytes for one
    while True:
        cut = text[: max(room, 0)]
        data = encode({**kept, "raw": cut, "truncated": True})
        if len(data) <= limit or not cut:
            return data
        # Scale by the bytes each kept character took; always keep fewer than the last try.
        room = min(len(cut) - 1, len(cut) * (limit - base) // (len(data) - base))


class BoundedCache(dict[Any, Any]):
    """What an encoder keeps between records (stream heads, envelope heads, index names, record shapes):
    emptied when it holds ``limit`` entries, so it never grows with what the records hold."""

    __slots__ = ("limit",)

    def __init__(self, limit: int = 1024) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: Any, value: Any) -> Any:
        """Store and return ``value``; an unhashable key (a list in a field) is not stored."""
        if len(self) >= self.limit:
            self.clear()
        with contextlib.suppress(TypeError):
            self[key] = value
        return value


# An ELB log time: 2025-03-14T09:30:00.123456Z (ALB, NLB, CLB), seconds and the Z optional.
_ISO_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?")
# "2025-03-14T09:30:00" -> its epoch seconds, for the times already read: the lines of a file share a
# few hundred seconds, so most times need only the fraction read (a regex per line costs more than
# encoding the line).
_SECONDS = BoundedCache(4096)


def line_time_ns(when: object) -> int | None:
    """Nanoseconds since the epoch of a log line's ``time`` (UTC); None when it is not an ISO 8601 time."""
    if not isinstance(when, str):
        return None
    seconds = _SECONDS.get(when[:19])
    if seconds is None:
        return _read_time_ns(when)
    if len(when) == 27 and when[19] == "." and when[26] == "Z":  # ALB's own: microseconds and a Z
        fraction = when[20:26]
        if fraction.isdecimal():
            return seconds * 1_000_000_000 + int(fraction) * 1000
    rest = when[19:].removesuffix("Z")
    if not rest:
        return seconds * 1_000_000_000
    fraction = rest[1:]
    if rest[0] != "." or not 0 < len(fraction) <= 9 or not fraction.isdecimal():
        return None
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


def _read_time_ns(when: str) -> int | None:
    """``line_time_ns`` of a time whose second is not cached yet (it is, after this, when valid)."""
    match = _ISO_TIME.fullmatch(when)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        start = _hour_start(int(year), int(month), int(day), int(hour))
    except ValueError:
        return None
    seconds = start + int(minute) * 60 + int(second)
    _SECONDS.keep(when[:19], seconds)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def record_time_ns(record: dict[str, Any]) -> int | None:
    """The record's own ``time``; else the CloudWatch Logs event's ``event_time``; None when neither."""
    nanoseconds = line_time_ns(record.get("time"))
    return nanoseconds if nanoseconds is not None else line_time_ns(record.get("event_time"))


@functools.lru_cache(maxsize=256)
def _hour_start(year: int, month: int, day: int, hour: int) -> int:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour <= 23):
        raise ValueError("not a date")
    return calendar.timegm((year, month, day, hour, 0, 0))
