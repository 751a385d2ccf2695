"""``otlp``: OTLP/HTTP logs, JSON encoding (``POST .../v1/logs``, ``Content-Type: application/json``), the
default of ``OTLP_PROTOCOL``; ``http/protobuf`` is forwarder.destinations.otlp_protobuf, which shares the
names, resource and severity defined here.

The body is an ``ExportLogsServiceRequest`` in the protobuf JSON mapping OTLP prescribes: camelCase
field names, 64-bit integers as decimal strings, enums as numbers, attribute values as
``{"stringValue": ...}``, ``{"intValue": "..."}``, ``{"doubleValue": ...}``, ``{"boolValue": ...}``.

Each line is one ``ResourceLogs`` holding one log record: batches are cut, and retry bodies cut from their
buffer, record by record, so every record carries its own resource (the cloud account and region from the
S3 key and the load balancer from the line; for CloudWatch Logs, the owner account, log group and stream);
gzip absorbs the repetition. The record's ``timeUnixNano`` is the line's time (else the CloudWatch Logs
event's), its attributes the parsed fields (named by OpenTelemetry's semantic conventions where one
exists, under the forwarder's own names otherwise, ``event_id`` included: OTLP has no document id), its
severity follows the HTTP status (5xx ERROR, 4xx WARN, else INFO) or a ``level`` field, unset without
either, and its body is the raw line for a line that did not parse or has no known format (a parsed line
is entirely in its attributes).

Answers (OTLP specification, "OTLP/HTTP Response"): 200 with ``partialSuccess.rejectedLogRecords`` > 0 is a
rejection of that many records (a count and one message, no positions), never retried; only 429, 502,
503 and 504 are retryable (with ``Retry-After``), every other status is permanent.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import operator
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import forwarder
from forwarder import jsonutil
from forwarder.destinations import (
    DELIVERED,
    BoundedCache,
    Framing,
    Rejection,
    Verdict,
    line_time_ns,
    short_reason,
    status_verdict,
)

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

logger = logging.getLogger(__name__)

# OTLP/HTTP: "The requests that receive a response status code listed in following table SHOULD be
# retried": 429, 502, 503, 504. All other 4xx and 5xx responses MUST NOT be retried.
RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))

# Fields of every log type named by OpenTelemetry's semantic conventions.
_COMMON_NAMES = {
    "client_ip": "client.address",
    "client_port": "client.port",
    "domain_name": "tls.client.server_name",  # ALB and NLB: the SNI name the client sent
    "s3_bucket": "aws.s3.bucket",
    "s3_key": "aws.s3.key",
}
# Fields of HTTP access logs (ALB, Classic): the request as the load balancer received and answered it.
_HTTP_NAMES = {
    **_COMMON_NAMES,
    "http_method": "http.request.method",
    "request_url": "url.full",
    "elb_status_code": "http.response.status_code",
    "user_agent": "user_agent.original",
    "received_bytes": "http.request.size",  # request line, headers and body, as the semconv counts
    "sent_bytes": "http.response.size",
}
# API Gateway access logs: the CLF variant's names, and the JSON variant's ($context variable names).
_APIGATEWAY_NAMES = {
    "method": "http.request.method",
    "httpMethod": "http.request.method",
    "status": "http.response.status_code",
    "source_ip": "client.address",
    "ip": "client.address",
    "userAgent": "user_agent.original",
}
_NAMES_BY_LOG_TYPE = {
    "alb_access": _HTTP_NAMES,
    "classic_elb_access": _HTTP_NAMES,
    "apigateway_access": {**_COMMON_NAMES, **_APIGATEWAY_NAMES},
    "vpc_flow": {
        "srcaddr": "source.address",
        "srcport": "source.port",
        "dstaddr": "destination.address",
        "dstport": "destination.port",
    },
    "lambda_platform": {"request_id": "faas.invocation_id"},
    "lambda_json": {"request_id": "faas.invocation_id", "requestId": "faas.invocation_id"},
}
# Split into a protocol name and version: "TLSv1.2" (ALB access and connection logs), "tlsv12" (NLB) ->
# tls.protocol.name "tls", .version "1.2"; "HTTP/1.1" -> network.protocol.name "http", .version "1.1".
_TLS_FIELDS = frozenset(("ssl_protocol", "tls_protocol", "tls_protocol_version"))
_HTTP_VERSION_FIELDS = frozenset(("http_version", "protocol"))
SPLIT_FIELDS = _TLS_FIELDS | _HTTP_VERSION_FIELDS
_TLS_PROTOCOL = re.compile(r"(?i)(tls|ssl)v?(\d)\.?(\d)?")
STATUS_FIELDS = ("elb_status_code", "status_code", "status")
# Not attributes: the raw line is the body; the load balancer and the log group belong to the resource.
NOT_ATTRIBUTES = frozenset(("raw", "elb", "log_group", "log_stream", "owner"))

# Log Data Model severity numbers: FATAL 21, ERROR 17, WARN 13, INFO 9, DEBUG 5, TRACE 1.
_ERROR = b'"severityNumber":17,"severityText":"ERROR"'
_WARN = b'"severityNumber":13,"severityText":"WARN"'
_INFO = b'"severityNumber":9,"severityText":"INFO"'
_LEVELS = {
    "FATAL": 21,
    "CRITICAL": 21,
    "ERROR": 17,
    "WARN": 13,
    "WARNING": 13,
    "INFO": 9,
    "DEBUG": 5,
    "TRACE": 1,
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# S3 keys of ELB logs: <prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/<file>.
_KEY_IDENTITY = re.compile(r"(?:^|/)AWSLogs/(\d{12})/elasticloadbalancing/([a-z0-9-]+)/")
# ARN partitions by region prefix: China (cn-) is aws-cn, GovCloud (us-gov-) aws-us-gov, others aws; as
# provisioner/arns.py, which the forwarder's zip does not ship.
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"))
_MAX_CACHED = 1024
SCOPE_NAME = "alb-log-onboarding-forwarder"
# The fields the resource is made of (resource_attributes' arguments, in order).
RESOURCE_FIELDS = ("s3_key", "elb", "owner", "log_group", "log_stream")
_RECORD_END = b"]}]}"


def otlp_destination(config: Config) -> OtlpLogs:
    """The encoding ``OTLP_PROTOCOL`` names: JSON (the default) or binary protobuf."""
    if config.otlp_protocol != "http/protobuf":
        return OtlpLogs(config)
    from forwarder.destinations.otlp_protobuf import OtlpProtobufLogs  # noqa: PLC0415 -- only for it

    return OtlpProtobufLogs(config)


class OtlpLogs:
    """One ``ResourceLogs`` per record inside ``{"resourceLogs":[`` ... ``]}``."""

    name = "otlp"
    content_type = "application/json"
    framing = Framing(prefix=b'{"resourceLogs":[', separator=b",", suffix=b"]}")
    extra_headers = ()
    accepts = (
        "OTLP/HTTP logs in JSON (HTTP_ENDPOINT is https://HOST:4318/v1/logs; OTLP_PROTOCOL=http/protobuf "
        "for a receiver that takes only protobuf)"
    )

    def __init__(self, config: Config) -> None:
        del config  # nothing to configure
        self._heads = BoundedCache()
        self._shapes = BoundedCache()

    def encode(self, record: dict[str, Any]) -> bytes:
        """The record as a ResourceLogs with one log record, written from the template of its shape."""
        get = record.get
        key = (get("s3_key"), get("elb"), get("owner"), get("log_group"), get("log_stream"))
        try:
            head: bytes | None = self._heads.get(key)
        except TypeError:  # a list in one of those fields (a JSON log line's own "elb"): not cached
            head = None
        if head is None:
            head = self._heads.keep(key, _resource_head(*key))
        values = tuple(record.values())
        kind = (get("log_type"), tuple(record), tuple(map(type, values)))
        shape: _Shape | None = self._shapes.get(kind)
        if shape is None:
            shape = self._shapes.keep(kind, _Shape(*kind))
        parts = shape.fill(values)
        if parts is None:  # a value the template cannot take: written field by field
            parts = [b"", b",".join(_attributes(record)), b"]}" + _RECORD_END]
        parts[0] = head + shape.opening(values)
        return b"".join(parts)  # type: ignore[arg-type]  # every slot is filled

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """429/502/503/504 retry the request, other non-2xx refuse it; a 2xx may reject some records."""
        verdict = status_verdict(response, sent, retryable=RETRYABLE_STATUSES.__contains__)
        if verdict is not None:
            return verdict
        partial = _partial_success(response.body)
        if partial is None:
            return Verdict(
                refused=True,
                failure=f"answered HTTP {response.status} without an OTLP ExportLogsServiceResponse "
                f"({short_reason(response.body[:60].decode('utf-8', 'replace'))!r}); check that "
                "HTTP_ENDPOINT is the intake's OTLP/HTTP logs URL (.../v1/logs)",
            )
        rejected, message = partial
        if rejected <= 0:
            if message:  # a full success may carry a warning
                logger.warning("the OTLP intake accepted every record and said: %s", short_reason(message))
            return DELIVERED
        reason = short_reason(message) or "no reason given"
        return Verdict(
            rejected=min(rejected, sent.records),
            rejections=(Rejection(None, f"{rejected} log records rejected (partial success): {reason}"),),
        )


def resource_attributes(
    key: Any, elb: Any, owner: Any, log_group: Any, log_stream: Any
) -> list[tuple[str, Any]]:
    """The resource's attributes: the cloud account and region from the S3 key and the load balancer from
    the line; for CloudWatch Logs, the owner account, log group and stream."""
    attributes: list[tuple[str, Any]] = [("cloud.provider", "aws")]
    match = _KEY_IDENTITY.search(key) if isinstance(key, str) else None
    if owner:  # CloudWatch Logs: the account the log data comes from
        attributes.append(("cloud.account.id", owner))
    if log_group:
        attributes.append(("aws.log.group.names", [log_group]))
    if log_stream:
        attributes.append(("aws.log.stream.names", [log_stream]))
    if match:
        account, region = match.groups()
        attributes += [("cloud.account.id", account), ("cloud.region", region)]
        if isinstance(elb, str) and elb:
            partition = next((p for prefix, p in _PARTITIONS if region.startswith(prefix)), "aws")
            # ALB/NLB: "app/<name>/<id>", "net/<name>/<id>"; Classic: "<name>". The ARN ends with either.
            arn = f"arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/{elb}"
            attributes.append(("cloud.resource_id", arn))
    if elb:
        attributes.append(("elb", elb))
    return attributes


def _resource_head(key: Any, elb: Any, owner: Any, log_group: Any, log_stream: Any) -> bytes:
    """The bytes of a ResourceLogs up to its first log record: resource, then the forwarder's scope."""
    attributes = [
        _attribute(name, value) for name, value in resource_attributes(key, elb, owner, log_group, log_stream)
    ]
    scope = jsonutil.dumps({"name": SCOPE_NAME, "version": forwarder.__version__})
    return (
        b'{"resource":{"attributes":['
        + b",".join(attributes)
        + b']},"scopeLogs":[{"scope":'
        + scope
        + b',"logRecords":['
    )


def _attributes(record: dict[str, Any]) -> list[bytes]:
    """One KeyValue per field, field by field: the general way, for the records a ``_Shape`` cannot take."""
    heads = _HEADS_BY_LOG_TYPE.get(record.get("log_type") or "", _COMMON_HEADS)
    dumps = jsonutil.dumps
    attributes = []
    for field, value in record.items():
        if value is None:
            continue
        head = heads[field]
        if head is None:
            if field in NOT_ATTRIBUTES:
                continue
            split = _split(field, value) if field in SPLIT_FIELDS and isinstance(value, str) else None
            if split:
                attributes += split
                continue
            head = _key_head(heads.names.get(field, field))
        kind = type(value)
        if kind is str:
            attributes.append(head + b'{"stringValue":' + dumps(value) + b"}}")
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            attributes.append(head + b'{"intValue":"%d"}}' % value)
        else:
            attributes.append(head + _any_value(value) + b"}")
    return attributes


def split_attributes(field: str, value: str) -> list[tuple[str, str]]:
    """The two attributes one field becomes: "TLSv1.2" -> tls.protocol.name/.version, "HTTP/1.1" ->
    network.protocol.name/.version; none when the value has another shape (it keeps its own name)."""
    if field in _HTTP_VERSION_FIELDS:
        if not value.startswith("HTTP/"):
            return []
        return [("network.protocol.name", "http"), ("network.protocol.version", value[5:])]
    match = _TLS_PROTOCOL.fullmatch(value)
    if not match:
        return []
    name, major, minor = match.groups()
    version = major if minor is None else f"{major}.{minor}"
    return [("tls.protocol.name", name.lower()), ("tls.protocol.version", version)]


def _split(field: str, value: str) -> list[bytes]:
    return [_attribute(key, item) for key, item in split_attributes(field, value)]


class _Heads(dict[str, bytes]):
    """Field -> the bytes of its KeyValue up to the value, under the names of one kind of log."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, field: str) -> bytes | None:
        if field in NOT_ATTRIBUTES or field in SPLIT_FIELDS or len(self) >= _MAX_CACHED:
            return None
        head = self[field] = _key_head(self.names.get(field, field))
        return head


_COMMON_HEADS = _Heads(_COMMON_NAMES)
_HEADS_BY_LOG_TYPE = {log_type: _Heads(names) for log_type, names in _NAMES_BY_LOG_TYPE.items()}
# Log type -> field -> attribute name ("" for the types without names of their own).
HEADS_NAMES: dict[str, dict[str, str]] = {"": _COMMON_NAMES, **_NAMES_BY_LOG_TYPE}


class _Shape:
    """The KeyValues of the records of one log type, key order and value types, as a template.

    The keys and AnyValue wrappers are written once, when the shape is first seen, as the constant parts
    of a list with a slot between each two: the string values' slots first, then the numbers', then the
    other values' (lists, versions split in two attributes); OTLP attributes have no order. Per record,
    the string values are escaped in one JSON call, joined by NUL, which JSON writes ``\\u0000``, so the
    result splits back into one slot per string; the numbers are written in one call too (a JSON array of
    them splits at its commas); the other values are written one by one, from caches. A record whose
    values do not fit (a NUL in a string, an integer beyond int64, NaN) gets ``None``: ``_attributes``
    writes it. Python's calls are the cost here (about as much per value as orjson takes to write the
    whole record), so there are few, and the slots are filled by slice, without a loop.
    """

    __slots__ = (
        "_floats",
        "_ints",
        "_number_slots",
        "_numbers",
        "_other_slots",
        "_others",
        "_string_slots",
        "_strings",
        "_template",
        "_writers",
        "level",
        "raw",
        "status",
        "times",
    )

    def __init__(self, log_type: Any, keys: tuple[str, ...], kinds: tuple[type, ...]) -> None:
        names = _HEADS_BY_LOG_TYPE.get(log_type or "", _COMMON_HEADS).names
        strings = {field: index for index, field in enumerate(keys) if kinds[index] is str}
        integers = {field: index for index, field in enumerate(keys) if kinds[index] is int}
        self.times = tuple(strings[field] for field in ("time", "event_time") if field in strings)
        self.status = _value_at(next((integers[f] for f in STATUS_FIELDS if f in integers), None))
        self.level = _value_at(strings.get("level"))
        self.raw = strings.get("raw")
        # (value index, bytes before the value, bytes after it) per slot, by group.
        groups: dict[str, list[tuple[int, bytes, bytes]]] = {"string": [], "number": [], "other": []}
        writers: list[Callable[[Any], bytes]] = []
        for index, (field, kind) in enumerate(zip(keys, kinds, strict=True)):
            if kind is _NONE or field in NOT_ATTRIBUTES:
                continue
            head = _key_head(names.get(field, field))
            if field in SPLIT_FIELDS and kind is str:
                groups["other"].append((index, b"", b""))
                writers.append(_SplitField(field, names).__getitem__)
            elif kind in _SCALAR_WRAPPERS:
                before, after = _SCALAR_WRAPPERS[kind]
                groups["string" if kind is str else "number"].append((index, head + before, after))
            else:
                groups["other"].append((index, head, b"}"))
                writers.append(_array_value if kind is list else _any_value)
        ordered = groups["string"] + groups["number"] + groups["other"]
        self._strings = _picker([index for index, _, _ in groups["string"]])
        self._numbers = _picker([index for index, _, _ in groups["number"]])
        self._ints = _picker([index for index, _, _ in groups["number"] if kinds[index] is int])
        self._floats = _picker([index for index, _, _ in groups["number"] if kinds[index] is float])
        self._others = _picker([index for index, _, _ in groups["other"]])
        self._writers = writers
        # Place 0 is the record's opening (resource, time, severity, body); then constant parts at odd
        # places with a slot (None until filled) between each two; the record's end closes the last one.
        template: list[bytes | None] = [None]
        after = b""
        for position, (_, before, following) in enumerate(ordered):
            template += [after + b"," + before if position else before, None]
            after = following
        template.append(after + b"]}" + _RECORD_END)
        self._template = template
        # The slots of each group: strings fill 2, 4, ...; the numbers and the others the slots after.
        numbers_at = 2 * len(groups["string"]) + 2
        others_at = numbers_at + 2 * len(groups["number"])
        self._string_slots = slice(2, numbers_at, 2)
        self._number_slots = slice(numbers_at, others_at, 2)
        self._other_slots = slice(others_at, len(template) - 1, 2)

    def opening(self, values: tuple[Any, ...]) -> bytes:
        """The LogRecord up to its first attribute: times, severity, and the raw line as its body."""
        parts = []
        for index in self.times:  # the line's time, else the CloudWatch Logs event's own time
            nanos = line_time_ns(values[index])
            if nanos is not None:
                parts.append(b'"timeUnixNano":"%d"' % nanos)
                break
        parts.append(b'"observedTimeUnixNano":"%d"' % time.time_ns())
        severity = _severity(self.status(values), self.level(values))
        if severity is not None:
            parts.append(severity)
        if self.raw is not None:
            parts.append(b'"body":' + _any_value(values[self.raw]))
        return b"{" + b",".join(parts) + b',"attributes":['

    def fill(self, values: tuple[Any, ...]) -> list[bytes | None] | None:
        """The template filled with a record's values (place 0 left to the opening); None when one of
        them does not fit."""
        ints = self._ints(values)
        if ints and (max(ints) > _INT64_MAX or min(ints) < _INT64_MIN):
            return None
        floats = self._floats(values)
        if floats and not math.isfinite(sum(floats)):
            return None
        filled = self._template.copy()
        strings = self._strings(values)
        if strings:
            slots = jsonutil.dumps(_NUL.join(strings))[1:-1].split(_ESCAPED_NUL)
            if len(slots) != len(strings):  # a string had a NUL (or the text \\u0000) of its own
                return None
            filled[self._string_slots] = slots
        numbers = self._numbers(values)
        if numbers:
            filled[self._number_slots] = jsonutil.dumps(numbers)[1:-1].split(b",")
        if self._writers:
            filled[self._other_slots] = map(operator.call, self._writers, self._others(values))
        return filled


_NONE = type(None)
_NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"
# AnyValue around the JSON of a string (without its quotes), an int64 (a decimal string) and a finite float.
_SCALAR_WRAPPERS = {
    str: (b'{"stringValue":"', b'"}}'),
    int: (b'{"intValue":"', b'"}}'),
    float: (b'{"doubleValue":', b"}}"),
}


def _value_at(index: int | None) -> Callable[[tuple[Any, ...]], Any]:
    """A function of values to the value at ``index``; to None when there is no index."""
    return (lambda values: None) if index is None else operator.itemgetter(index)


def _picker(indexes: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function of values to the values at ``indexes``, always a tuple (itemgetter of one is bare)."""
    if len(indexes) != 1:
        return operator.itemgetter(*indexes) if indexes else lambda values: ()
    index = indexes[0]
    return lambda values: (values[index],)


class _SplitField(dict[str, bytes]):
    """Value of a TLS or HTTP version field -> its attributes (two when split, else one of its own)."""

    def __init__(self, field: str, names: dict[str, str]) -> None:
        super().__init__()
        self._field = field
        self._name = names.get(field, field)

    def __missing__(self, value: str) -> bytes:
        written = b",".join(_split(self._field, value)) or _attribute(self._name, value)
        if len(self) < _MAX_CACHED:
            self[value] = written
        return written


_ARRAYS: dict[tuple[Any, ...], bytes] = {}
_STRING_ARRAY = (b'{"arrayValue":{"values":[{"stringValue":"', b'"},{"stringValue":"', b'"}]}}')


def _array_value(value: list[Any]) -> bytes:
    """``_any_value`` of a list: from a cache for the lists that repeat (actions, status lists), which
    stops growing when full, so lists of per-request values (target addresses) do not push them out."""
    try:
        key = tuple(value)
        written = _ARRAYS.get(key)
    except TypeError:  # an element is a list or dict itself
        return _any_value(value)
    if written is not None:
        return written
    written = None
    if value and set(map(type, value)) == {str}:  # strings: escaped in one JSON call, joined by NUL
        pieces = jsonutil.dumps(_NUL.join(value))[1:-1].split(_ESCAPED_NUL)
        if len(pieces) == len(value):  # else an element had a NUL (or the text \u0000) of its own
            start, between, end = _STRING_ARRAY
            written = start + between.join(pieces) + end
    if written is None:
        written = _any_value(value)
    if len(_ARRAYS) < _MAX_CACHED:
        _ARRAYS[key] = written
    return written


def _attribute(key: str, value: Any) -> bytes:
    return _key_head(key) + _any_value(value) + b"}"


@functools.lru_cache(maxsize=256)
def _key_head(key: str) -> bytes:
    return b'{"key":' + jsonutil.dumps(key) + b',"value":'


def _any_value(value: Any) -> bytes:
    """A value in OTLP's AnyValue JSON form: int64 as a decimal string, NaN and infinities as strings."""
    kind = type(value)
    if kind is str:
        return b'{"stringValue":' + jsonutil.dumps(value) + b"}"
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return b'{"intValue":"%d"}' % value
        return b'{"stringValue":"%d"}' % value  # a corrupt field beyond int64: kept, as text
    if kind is float:
        if math.isfinite(value):
            return b'{"doubleValue":' + jsonutil.dumps(value) + b"}"
        return b'{"doubleValue":"%s"}' % (
            b"NaN" if math.isnan(value) else b"Infinity" if value > 0 else b"-Infinity"
        )
    if kind is bool:
        return b'{"boolValue":true}' if value else b'{"boolValue":false}'
    if isinstance(value, list | tuple):
        items = b",".join(_any_value(item) for item in value if item is not None)
        return b'{"arrayValue":{"values":[' + items + b"]}}"
    if isinstance(value, dict):
        items = b",".join(_attribute(str(k), v) for k, v in value.items() if v is not None)
        return b'{"kvlistValue":{"values":[' + items + b"]}}"
    return _any_value(str(value))


def severity_of(status: Any, level: Any) -> tuple[int, str] | None:
    """From the HTTP status (5xx ERROR, 4xx WARN, else INFO), else from a ``level`` field."""
    if isinstance(status, int):
        return (17, "ERROR") if status >= 500 else (13, "WARN") if status >= 400 else (9, "INFO")
    number = _LEVELS.get(level.upper()) if isinstance(level, str) else None
    if number is None:
        return None
    return number, level


def _severity(status: int | None, level: str | None) -> bytes | None:
    if status is not None:
        return _ERROR if status >= 500 else _WARN if status >= 400 else _INFO
    severity = severity_of(None, level)
    if severity is None:
        return None
    return b'"severityNumber":%d,"severityText":' % severity[0] + jsonutil.dumps(severity[1])


def _partial_success(body: bytes) -> tuple[int, str] | None:
    """(rejectedLogRecords, errorMessage) of an ExportLogsServiceResponse; None when the body is not one.

    The answer should be JSON like the request, but some receivers answer protobuf whatever was sent, so
    a body that is not JSON is read as protobuf. An empty body is the empty message in both: a success.
    """
    if not body.strip():
        return 0, ""
    try:
        answer = json.loads(body)
    except ValueError:
        return _protobuf_partial_success(body)
    if not isinstance(answer, dict):
        return None
    partial = answer.get("partialSuccess")
    if not isinstance(partial, dict):
        return 0, ""
    message = partial.get("errorMessage", "")
    try:
        count = int(partial.get("rejectedLogRecords", 0))  # int64: a string in the JSON mapping
    except (TypeError, ValueError):
        count = 0
    return count, message if isinstance(message, str) else ""


def _protobuf_partial_success(body: bytes) -> tuple[int, str] | None:
    """The same from protobuf: field 1 (partial_success) holds 1 (rejected_log_records), 2 (error_message)."""
    fields = _protobuf_fields(body)
    if fields is None:
        return None
    inner = fields.get(1, b"")
    partial = _protobuf_fields(inner) if isinstance(inner, bytes) else None
    if partial is None:
        return None
    rejected, message = partial.get(1, 0), partial.get(2, b"")
    if not isinstance(rejected, int) or not isinstance(message, bytes):
        return None
    return rejected, message.decode("utf-8", "replace")


def _protobuf_fields(data: bytes) -> dict[int, int | bytes] | None:
    """Field number -> last value (varint or length-delimited bytes); None when ``data`` is not protobuf."""
    fields: dict[int, int | bytes] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        if key is None:
            return None
        number, wire_type = key >> 3, key & 7
        if number == 0:
            return None
        if wire_type == 0:
            value, position = _varint(data, position)
            if value is None:
                return None
            fields[number] = value
        elif wire_type == 2:
            length, position = _varint(data, position)
            if length is None or position + length > len(data):
                return None
            fields[number] = data[position : position + length]
            position += length
        elif wire_type in (1, 5):  # fixed64, fixed32: no such field in this message, skipped
            position += 8 if wire_type == 1 else 4
            if position > len(data):
                return None
        else:
            return None
    return fields


def _varint(data: bytes, position: int) -> tuple[int | None, int]:
    value = shift = 0
    while position < len(data) and shift < 64:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    return None, position
