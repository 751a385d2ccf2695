"""``loki``: Grafana Loki's push API, ``POST /loki/api/v1/push`` with a JSON body.

The body is ``{"streams": [{"stream": {label: value}, "values": [["<ns>", "<line>"]]}, ...]}``: each
value a Unix epoch in nanoseconds, as a string, from the log line's time (a CloudWatch Logs event's time
when the line has none), and the record's JSON as the
line. Each record is one stream entry under its label set, so a retry body can be cut from the batch;
Loki files entries under their label set, so entries of equal labels land in one stream. Labels come from
a small, fixed set of low-cardinality names (``LOKI_LABELS``) and constants (``name=value``), never from a
per-request field: every label combination is a stream to Loki, and per-request values would make one
per line.

Loki answers 204 No Content once it took the entries; 429 (ingestion rate limit) and 5xx but 501 are
worth another try (Vector's Loki sink retries the same); other 4xx are permanent, 400 with Loki's text
naming the problem ("timestamp too old", "Max entry size ... exceeded"). Loki drops an entry identical to
one it has (same stream, timestamp and line), so a resent batch is not stored twice.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from forwarder import jsonutil
from forwarder.config import DEFAULT_LOKI_LABELS, LOKI_LABELS
from forwarder.destinations import DELIVERED, Framing, Verdict, record_time_ns, status_verdict

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

# Label name -> the record field it is read from. All are constant within one S3 object or delivery.
LABEL_FIELDS = {
    "log_type": "log_type",
    "load_balancer": "elb",
    "s3_bucket": "s3_bucket",
    "log_group": "log_group",  # CloudWatch Logs deliveries: constant within one
}
# Prometheus label names; Loki reserves names starting with "__".
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNKNOWN = "unknown"  # a label with an empty value is no label; a line that did not parse has no elb


def parse_labels(value: str | None) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """LOKI_LABELS ("log_type,load_balancer,env=prod") as (name, field or "=value") pairs, and problems."""
    if value is None:
        return DEFAULT_LOKI_LABELS, []
    items = [item.strip() for item in value.split(",") if item.strip()]
    labels: list[tuple[str, str]] = []
    problems: list[str] = []
    for item in items:
        name, is_constant, constant = item.partition("=")
        name = name.strip()
        if is_constant:
            if (
                not _LABEL_NAME.fullmatch(name)
                or name.startswith("__")
                or not constant
                or _CONTROL.search(constant)
            ):
                problems.append(f"{LOKI_LABELS} has a bad constant label {item!r} (want name=value)")
                continue
            labels.append((name, "=" + constant.strip()))
        elif name in LABEL_FIELDS:
            labels.append((name, LABEL_FIELDS[name]))
        else:
            problems.append(
                f"{LOKI_LABELS} may name only {', '.join(LABEL_FIELDS)} or name=value constants "
                f"(got {name!r}); per-request fields would make a Loki stream per line"
            )
    names = [name for name, _ in labels]
    if not labels and not problems:
        problems.append(f"{LOKI_LABELS} must name at least one label (Loki needs one per stream)")
    if len(set(names)) != len(names):
        problems.append(f"{LOKI_LABELS} names a label twice")
    return tuple(labels), problems


def _is_retryable(status: int) -> bool:
    return status == 429 or (500 <= status <= 599 and status != 501)


class LokiPush:
    """One stream entry per record inside ``{"streams":[`` ... ``]}``."""

    name = "loki"
    content_type = "application/json"
    framing = Framing(prefix=b'{"streams":[', separator=b",", suffix=b"]}")
    extra_headers = ()
    accepts = "Loki's JSON push API (HTTP_ENDPOINT is https://HOST:3100/loki/api/v1/push)"

    def __init__(self, config: Config) -> None:
        self._labels = config.loki_labels
        self._streams: dict[tuple[str, ...], dict[str, str]] = {}

    def encode(self, record: dict[str, Any]) -> bytes:
        """The record's stream entry; a line without a readable time gets the sending time."""
        values = tuple(
            source[1:] if source.startswith("=") else str(record.get(source) or _UNKNOWN)
            for _, source in self._labels
        )
        stream = self._streams.get(values)
        if stream is None:
            if len(self._streams) >= 1024:
                self._streams.clear()
            stream = self._streams[values] = dict(zip((n for n, _ in self._labels), values, strict=True))
        nanoseconds = record_time_ns(record)
        if nanoseconds is None:
            nanoseconds = time.time_ns()
        line = jsonutil.dumps(record).decode("utf-8", "replace")
        return jsonutil.dumps({"stream": stream, "values": [[str(nanoseconds), line]]})

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """204 (any 2xx): stored; 429 and 5xx but 501: again; other answers: refused with Loki's text."""
        return status_verdict(response, sent, retryable=_is_retryable) or DELIVERED
