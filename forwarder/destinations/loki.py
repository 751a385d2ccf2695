"""``loki``: Grafana Loki's push API, ``POST /loki/api/v1/push`` with a JSON body.

The body is ``{"streams": [{"stream": {label: value}, "values": [["<ns>", "<line>"], ...]}, ...]}``:
each value a Unix epoch in nanoseconds, as a string, from the log line's time (a CloudWatch Logs event's
time when the line has none), and the record's JSON as the line. Each record is encoded as a stream entry
of its own, so batches are cut and retry bodies cut from their buffer record by record; the body then
holds one stream per label set, its entries in the order of the lines (``framing.assemble``). Labels
come from a small, fixed set of low-cardinality names (``LOKI_LABELS``) and constants (``name=value``),
never from a per-request field: every label combination is a stream to Loki, and per-request values
would make one per line. A multi-tenant Loki (``auth_enabled``, its default) takes each push for the tenant
its ``X-Scope-OrgID`` names (``LOKI_TENANT``) and answers 401 "no org id" to one that names none.

Loki answers 204 No Content once it took the entries; 429 (ingestion rate limit) and 5xx but 501 are
worth another try (Vector's Loki sink retries the same); other 4xx are permanent, 400 with Loki's text
naming the problem ("timestamp too old", "Max entry size ... exceeded"). Loki drops an entry identical to
one it has (same stream, timestamp and line), so a resent batch is not stored twice.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Sequence
from itertools import chain, islice, repeat
from typing import TYPE_CHECKING, Any

from forwarder import jsonutil
from forwarder.config import DEFAULT_LOKI_LABELS, LOKI_LABELS, LOKI_TENANT
from forwarder.destinations import DELIVERED, BoundedCache, Framing, Verdict, record_time_ns, status_verdict

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
# The logs whose "elb" field is the load balancer that wrote the file (constant within one); in other logs
# (a JSON message's own "elb", say) the field is a value per line, and makes no label.
_ELB_LOG_TYPES = frozenset(
    ("alb_access", "alb_connection", "alb_health_check", "nlb_access", "classic_elb_access")
)
# Loki's tenant ids (its multi-tenancy documentation): up to 150 bytes of alphanumerics and ! - _ . * ' ( ),
# neither "." nor "..".
_TENANT = re.compile(r"[A-Za-z0-9!\-_.*'()]{1,150}")
# Loki with auth_enabled answers a push that names no tenant 401 with this text.
_NO_ORG_ID = b"no org id"


def tenant_problems(tenant: str | None) -> list[str]:
    """What is wrong with a LOKI_TENANT value (none when it is unset or usable)."""
    if tenant is None or (_TENANT.fullmatch(tenant) and tenant not in (".", "..")):
        return []
    return [
        f"{LOKI_TENANT} must be a Loki tenant id: up to 150 letters, digits and ! - _ . * ' ( ), not . or .. "
        f"(got {tenant[:40]!r})"
    ]


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


_PREFIX, _SUFFIX = b'{"streams":[', b"]}"
_STREAM, _VALUES, _END = b'{"stream":', b',"values":[', b"]}"
_LOOK = 256  # bytes of an entry searched for the end of its labels first


def _streams(laid_out: bytearray, starts: Sequence[int]) -> bytes | bytearray:
    """The push body of these entries: one stream per label set, its values in the entries' order.

    ``laid_out`` is ``{"streams":[`` and the entries joined by commas; ``starts`` where each entry starts.
    An entry is ``{"stream":{labels},"values":[value]}``; its labels end at the first ``,"values":[``
    (label names and values are JSON strings, in which a quote is always escaped, so that text, and an
    entry's whole head, is found only where an entry starts). The entries of one S3 object share their
    labels: when every entry starts with the first one's head, the body is that head once, then each
    entry's value, sliced out by the offsets, joined by commas (no search through the bytes). Otherwise
    an entry that starts as the one before is of its stream, and only the others are searched, at their
    start."""
    head = _head_at(laid_out, starts[0])
    view = memoryview(laid_out)
    if all(map(laid_out.startswith, repeat(head), starts)):
        # Entry i is head, value, "]}", then the "," before entry i + 1 (the last ends the buffer).
        value_starts = map(operator.add, starts, repeat(len(head)))
        value_ends = chain(
            map(operator.sub, islice(starts, 1, None), repeat(1 + len(_END))), (len(laid_out) - len(_END),)
        )
        pieces = map(view.__getitem__, map(slice, value_starts, value_ends))
        return b"".join((_PREFIX, head, b",".join(pieces), _END, _SUFFIX))
    ends = [start - 1 for start in starts[1:]]
    ends.append(len(laid_out))
    streams: dict[bytes, list[memoryview]] = {}
    values: list[memoryview] = []
    head = b""
    for start, end in zip(starts, ends, strict=True):
        entry = view[start:end]
        if not head or entry[: len(head)] != head:  # another label set than the entry before
            head = _head_at(laid_out, start)
            values = streams.setdefault(head, [])
        values.append(entry[len(head) : -len(_END)])
    parts: list[bytes | memoryview] = [_PREFIX]
    for head, values in streams.items():
        if len(parts) > 1:
            parts.append(b",")
        joined: list[bytes | memoryview] = [b","] * (2 * len(values) - 1)
        joined[::2] = values
        parts += (head, *joined, _END)
    parts.append(_SUFFIX)
    return b"".join(parts)


def _head_at(laid_out: bytearray, start: int) -> bytes:
    """The head of the entry at ``start``: ``{"stream":{labels},"values":[``."""
    cut = laid_out.find(_VALUES, start, start + _LOOK)
    if cut < 0:  # labels longer than _LOOK (long constants or log group names)
        cut = laid_out.index(_VALUES, start)
    return bytes(laid_out[start : cut + len(_VALUES)])


def _is_retryable(status: int) -> bool:
    return status == 429 or (500 <= status <= 599 and status != 501)


class LokiPush:
    """Stream entries, grouped by label set inside ``{"streams":[`` ... ``]}``."""

    name = "loki"
    content_type = "application/json"
    framing = Framing(prefix=_PREFIX, separator=b",", suffix=_SUFFIX, assemble=_streams)
    accepts = "Loki's JSON push API (HTTP_ENDPOINT is https://HOST:3100/loki/api/v1/push)"

    def __init__(self, config: Config) -> None:
        self._labels = config.loki_labels
        self._fields = tuple(source for _, source in self._labels if not source.startswith("="))
        if "elb" in self._fields:  # the load balancer label also needs the log type (_ELB_LOG_TYPES)
            self._fields += ("log_type",)
        self._heads = BoundedCache()
        # A multi-tenant Loki (auth_enabled) stores a push under the tenant this header names.
        self.extra_headers: tuple[tuple[str, str], ...] = (
            (("X-Scope-OrgID", config.loki_tenant),) if config.loki_tenant else ()
        )

    def encode(self, record: dict[str, Any]) -> bytes:
        """The record's stream entry; a line without a readable time gets the sending time."""
        fields = tuple(map(record.get, self._fields))
        try:
            head = self._heads.get(fields)
        except TypeError:  # a label field holding a list: not cached
            head = None
        if head is None:
            head = self._head(fields)
        nanoseconds = record_time_ns(record)
        if nanoseconds is None:
            nanoseconds = time.time_ns()
        line = jsonutil.dumps(jsonutil.dumps(record).decode("utf-8", "replace"))
        return b'%s["%d",%s]]}' % (head, nanoseconds, line)

    def _head(self, fields: tuple[Any, ...]) -> bytes:
        """``{"stream":{labels},"values":[`` for these label field values (constants as configured)."""
        given = iter(fields)
        elb_log = "elb" in self._fields and fields[-1] in _ELB_LOG_TYPES  # fields[-1]: the log type
        labels = {}
        for name, source in self._labels:
            if source.startswith("="):
                labels[name] = source[1:]
                continue
            value = next(given)
            if source == "elb" and not elb_log:
                value = None
            labels[name] = str(value or _UNKNOWN)
        head: bytes = self._heads.keep(fields, _STREAM + jsonutil.dumps(labels) + _VALUES)
        return head

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """204 (any 2xx): stored; 429 and 5xx but 501: again; other answers: refused with Loki's text."""
        if response.status == 401 and _NO_ORG_ID in response.body[:100]:
            return Verdict(
                refused=True,
                failure=f"answered HTTP 401 Unauthorized: 'no org id'; this Loki is multi-tenant "
                f"(auth_enabled): set {LOKI_TENANT} to the tenant the lines belong to",
            )
        return status_verdict(response, sent, retryable=_is_retryable) or DELIVERED
