"""``otlp`` with ``OTLP_PROTOCOL=http/protobuf``: OTLP/HTTP logs in binary protobuf.

The same ``ExportLogsServiceRequest`` as the JSON encoding (forwarder.destinations.otlp: one
``ResourceLogs`` per record, the same resource, attribute names, times and severity), written as
protobuf's wire format (``Content-Type: application/x-protobuf``), the encoding every OTLP/HTTP receiver
takes and some (Elastic's APM Server among them) take alone. A repeated field is its elements one after
another, so each record is one complete ``resource_logs`` element and a body is records laid end to end:
batches and retry bodies are cut record by record, as in the other formats.

The fields, by number (opentelemetry-proto, ``logs/v1/logs.proto`` and ``common/v1/common.proto``):
ExportLogsServiceRequest.resource_logs 1; ResourceLogs.resource 1, .scope_logs 2; Resource.attributes 1;
ScopeLogs.scope 1, .log_records 2; InstrumentationScope.name 1, .version 2; LogRecord.time_unix_nano 1
(fixed64), .severity_number 2, .severity_text 3, .body 5, .attributes 6, .observed_time_unix_nano 11
(fixed64); KeyValue.key 1, .value 2; AnyValue.string_value 1, .bool_value 2, .int_value 3 (int64),
.double_value 4 (double), .array_value 5, .kvlist_value 6; ArrayValue.values 1; KeyValueList.values 1.
"""

from __future__ import annotations

import functools
import operator
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import forwarder
from forwarder import jsonutil
from forwarder.destinations import BoundedCache, Framing, line_time_ns
from forwarder.destinations.otlp import (
    HEADS_NAMES,
    NOT_ATTRIBUTES,
    RESOURCE_FIELDS,
    SCOPE_NAME,
    SPLIT_FIELDS,
    STATUS_FIELDS,
    OtlpLogs,
    resource_attributes,
    severity_of,
    split_attributes,
)

if TYPE_CHECKING:
    from forwarder.config import Config

CONTENT_TYPE = "application/x-protobuf"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64 = 2**64
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_MAX_CACHED = 1024


def _varint_of(value: int) -> bytes:
    """A non-negative integer as a base-128 varint (an int64 below zero is first taken modulo 2**64)."""
    if 16384 <= value < 2097152:  # three bytes: ports, sizes, line numbers
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 0:
        value += _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The varints of 0 .. 16383 (one or two bytes): the lengths of most fields and many values.
_SMALL = tuple(_varint_of(n) for n in range(1 << 14))


def _varint(value: int) -> bytes:
    return _SMALL[value] if 0 <= value < 16384 else _varint_of(value)


def _field(tag: int, data: bytes) -> bytes:
    """A length-delimited field: its tag byte, the length, the bytes."""
    return bytes((tag,)) + _varint(len(data)) + data


def _any_value(value: Any) -> bytes:
    """An AnyValue message: int64 beyond its range as text, None items of a list left out."""
    kind = type(value)
    if kind is str:
        return _field(0x0A, _utf8(value))
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return b"\x18" + _varint(value)
        return _field(0x0A, b"%d" % value)
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, list | tuple):
        return _field(0x2A, b"".join(_field(0x0A, _any_value(item)) for item in value if item is not None))
    if isinstance(value, dict):
        items = (_field(0x0A, _key_value(str(k), v)) for k, v in value.items() if v is not None)
        return _field(0x32, b"".join(items))
    return _any_value(str(value))


def _utf8(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # a lone surrogate: protobuf strings are UTF-8, so it becomes U+FFFD
        return jsonutil.without_surrogates(value).encode()


def _key_value(key: str, value: Any) -> bytes:
    return _field(0x0A, _utf8(key)) + _field(0x12, _any_value(value))


def _attribute(key: str, value: Any) -> bytes:
    """A KeyValue as an element of LogRecord.attributes (field 6)."""
    return _field(0x32, _key_value(key, value))


class _StringHeads(dict[int, bytes]):
    """Length of a string value (UTF-8 bytes) -> the bytes of its attribute up to the value, for one key:
    LogRecord.attributes tag and length, KeyValue.key, KeyValue.value's tag and length, AnyValue's tag and
    length."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self._key = b"\x0a" + _varint(len(key)) + key + b"\x12"

    def __missing__(self, length: int) -> bytes:
        value = b"\x0a" + _varint(length)
        inner = _varint(len(value) + length)
        size = len(self._key) + len(inner) + len(value) + length
        head = b"\x32" + _varint(size) + self._key + inner + value
        if len(self) < _MAX_CACHED:
            self[length] = head
        return head


class _IntHeads(dict[int, bytes]):
    """Length of an int's varint -> the bytes of its attribute up to the varint, for one key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self._key = b"\x0a" + _varint(len(key)) + key + b"\x12"

    def __missing__(self, length: int) -> bytes:
        head = b"\x32" + _varint(len(self._key) + 2 + length) + self._key + _varint(1 + length) + b"\x18"
        self[length] = head
        return head


@functools.lru_cache(maxsize=256)
def _key(name: str) -> bytes:
    return _utf8(name)


# One table of heads per attribute name, shared by every shape that has it.
_string_heads = functools.lru_cache(maxsize=256)(_StringHeads)
_int_heads = functools.lru_cache(maxsize=256)(_IntHeads)


class _Shape:
    """The attributes of the records of one log type, key order and value types, as a template: per field,
    the bytes before its value, looked up by the value's length; the values' bytes come from one call per
    kind (the strings encoded to UTF-8 in one call, joined by NUL and split again; the numbers one by one).
    A record whose values do not fit (a NUL in a string, an int beyond int64) gets None from ``fill``: its
    attributes are written field by field."""

    __slots__ = (
        "_double_values",
        "_doubles",
        "_int_at",
        "_int_heads",
        "_int_values",
        "_ints",
        "_other_at",
        "_other_writers",
        "_others",
        "_parts",
        "_string_at",
        "_string_heads",
        "_string_values",
        "_strings",
        "level",
        "raw",
        "resource",
        "resource_fields",
        "status",
        "times",
    )

    def __init__(self, log_type: Any, keys: tuple[str, ...], kinds: tuple[type, ...]) -> None:
        names = HEADS_NAMES.get(log_type or "", HEADS_NAMES[""])
        strings = {field: index for index, field in enumerate(keys) if kinds[index] is str}
        integers = {field: index for index, field in enumerate(keys) if kinds[index] is int}
        self.times = tuple(strings[field] for field in ("time", "event_time") if field in strings)
        self.status = next((integers[f] for f in STATUS_FIELDS if f in integers), None)
        self.level = strings.get("level")
        self.raw = strings.get("raw")
        present = [index for index, field in enumerate(keys) if field in RESOURCE_FIELDS]
        self.resource_fields = tuple(keys[index] for index in present)
        self.resource = _picker(present)
        string_fields, int_fields, double_fields, other_fields = [], [], [], []
        writers: list[Callable[[Any], bytes]] = []
        for index, (field, kind) in enumerate(zip(keys, kinds, strict=True)):
            if kind is _NONE or field in NOT_ATTRIBUTES:
                continue
            key = _key(names.get(field, field))
            if field in SPLIT_FIELDS and kind is str:
                other_fields.append(index)
                writers.append(_split_field(field, names.get(field, field)).__getitem__)
            elif kind is str:
                string_fields.append((index, _string_heads(key)))
            elif kind is int:
                int_fields.append((index, _int_heads(key)))
            elif kind is float:
                head = b"\x0a" + _varint(len(key)) + key + b"\x12"
                double_fields.append((index, b"\x32" + _varint(len(head) + 10) + head + b"\x09\x21"))
            else:
                other_fields.append(index)
                writers.append(_values(names.get(field, field)).written)
        self._strings = _picker([index for index, _ in string_fields])
        self._string_heads = tuple(heads for _, heads in string_fields)
        self._ints = _picker([index for index, _ in int_fields])
        self._int_heads = tuple(heads for _, heads in int_fields)
        self._doubles = _picker([index for index, _ in double_fields])
        self._others = _picker(other_fields)
        self._other_writers = tuple(writers)
        # The attributes' parts, in place: a head then a value per string, int and double, then one part
        # per other field; the doubles' heads are constant, the rest is filled per record.
        strings_end = 2 * len(string_fields)
        ints_end = strings_end + 2 * len(int_fields)
        doubles_end = ints_end + 2 * len(double_fields)
        parts: list[bytes] = [b""] * (doubles_end + len(other_fields))
        parts[ints_end:doubles_end:2] = [head for _, head in double_fields]
        self._parts = parts
        self._string_at, self._string_values = slice(0, strings_end, 2), slice(1, strings_end, 2)
        self._int_at, self._int_values = slice(strings_end, ints_end, 2), slice(strings_end + 1, ints_end, 2)
        self._double_values = slice(ints_end + 1, doubles_end, 2)
        self._other_at = slice(doubles_end, None)

    def opening(self, values: tuple[Any, ...]) -> bytes:
        """The LogRecord up to its attributes: times, severity, and the raw line as its body."""
        parts = []
        for index in self.times:  # the line's time, else the CloudWatch Logs event's own time
            nanos = line_time_ns(values[index])
            if nanos is not None:
                parts.append(b"\x09" + _FIXED64(nanos))
                break
        parts.append(b"\x59" + _FIXED64(time.time_ns()))
        status = values[self.status] if self.status is not None else None
        level = values[self.level] if self.level is not None else None
        if status is not None or level is not None:
            parts.append(_severity(severity_of(status, level)))
        if self.raw is not None:
            parts.append(_field(0x2A, _any_value(values[self.raw])))
        return b"".join(parts)

    def fill(self, values: tuple[Any, ...]) -> bytes | None:
        """The attributes of a record; None when a value does not fit the template."""
        parts = self._parts.copy()
        strings = self._strings(values)
        if strings:
            try:
                pieces = "\x00".join(strings).encode().split(b"\x00")
            except UnicodeEncodeError:  # a lone surrogate
                return None
            if len(pieces) != len(strings):  # a string had a NUL of its own
                return None
            parts[self._string_values] = pieces
            parts[self._string_at] = map(operator.getitem, self._string_heads, map(len, pieces))
        ints = self._ints(values)
        if ints:
            if max(ints) > _INT64_MAX or min(ints) < _INT64_MIN:
                return None
            encoded = [_SMALL[n] if 0 <= n < 16384 else _varint_of(n) for n in ints]
            parts[self._int_values] = encoded
            parts[self._int_at] = map(operator.getitem, self._int_heads, map(len, encoded))
        doubles = self._doubles(values)
        if doubles:
            parts[self._double_values] = map(_DOUBLE, doubles)
        if self._other_writers:
            parts[self._other_at] = map(operator.call, self._other_writers, self._others(values))
        return b"".join(parts)


class _Values(dict[Any, bytes]):
    """Value of one field (a list, say) -> its attribute, from a cache for the values that repeat (actions,
    status lists); full, it stops growing, so per-request values (target addresses) do not push them out."""

    __slots__ = ("_head", "_key")

    def __init__(self, key: str) -> None:
        super().__init__()
        self._key = key
        name = _utf8(key)
        self._head = b"\x0a" + _varint(len(name)) + name + b"\x12"

    def written(self, value: Any) -> bytes:
        try:
            cached = tuple(value) if type(value) is list else value
            written = self.get(cached)
        except TypeError:  # an element is a list or dict itself
            return _attribute(self._key, value)
        if written is None:
            if type(value) is list and len(value) == 1 and type(value[0]) is str:
                written = self._one_string(value[0])
            elif type(value) is list and all(type(item) is str for item in value):
                array = b"".join(map(_string_element, value))
                value_field = b"\x2a" + _varint(len(array)) + array
                key_value = self._head + _varint(len(value_field)) + value_field
                written = b"\x32" + _varint(len(key_value)) + key_value
            else:
                written = _attribute(self._key, value)
            if len(self) < _MAX_CACHED:
                self[cached] = written
        return written

    def _one_string(self, item: str) -> bytes:
        """The attribute of a list of one string (a target address, say), its lengths written at once
        when each fits in one byte."""
        data = _utf8(item)
        size = len(data)
        length = len(self._head) + size + 7  # the KeyValue: key, value tag, its length, then 6 + size
        if length > 127:
            array = _string_element(item)
            value_field = b"\x2a" + _varint(len(array)) + array
            key_value = self._head + _varint(len(value_field)) + value_field
            return b"\x32" + _varint(len(key_value)) + key_value
        # ArrayValue field (5), its one AnyValue (values, 1), whose string_value (1) is the data.
        lengths = bytes((size + 6, 0x2A, size + 4, 0x0A, size + 2, 0x0A, size))
        return bytes((0x32, length)) + self._head + lengths + data


def _string_element(item: str) -> bytes:
    """A string as an element of ArrayValue.values: the AnyValue's tag and length, then the AnyValue."""
    data = _utf8(item)
    size = len(data)
    if size < 126:  # every length one byte
        return bytes((0x0A, size + 2, 0x0A, size)) + data
    inner = b"\x0a" + _varint(size) + data
    return b"\x0a" + _varint(len(inner)) + inner


_NONE = type(None)


def _picker(indexes: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if len(indexes) != 1:
        return operator.itemgetter(*indexes) if indexes else lambda values: ()
    index = indexes[0]
    return lambda values: (values[index],)


class _SplitField(dict[str, bytes]):
    """Value of a TLS or HTTP version field -> its attributes (two when split, else one of its own)."""

    def __init__(self, field: str, name: str) -> None:
        super().__init__()
        self._field = field
        self._name = name

    def __missing__(self, value: str) -> bytes:
        pairs = split_attributes(self._field, value) or [(self._name, value)]
        written = b"".join(_attribute(key, item) for key, item in pairs)
        if len(self) < _MAX_CACHED:
            self[value] = written
        return written


# One cache per field and attribute name, shared by every shape that has it.
_split_field = functools.lru_cache(maxsize=64)(_SplitField)
_values = functools.lru_cache(maxsize=256)(_Values)


def _attributes(record: dict[str, Any]) -> bytes:
    """Field by field: the general way, for the records a ``_Shape`` cannot take."""
    names = HEADS_NAMES.get(record.get("log_type") or "", HEADS_NAMES[""])
    parts = []
    for field, value in record.items():
        if value is None or field in NOT_ATTRIBUTES:
            continue
        split = split_attributes(field, value) if field in SPLIT_FIELDS and isinstance(value, str) else None
        for key, item in split or [(names.get(field, field), value)]:
            parts.append(_attribute(key, item))
    return b"".join(parts)


_SEVERITIES: dict[tuple[int, str], bytes] = {}


def _severity(number_and_text: tuple[int, str] | None) -> bytes:
    if number_and_text is None:
        return b""
    written = _SEVERITIES.get(number_and_text)
    if written is None:
        number, text = number_and_text
        written = b"\x10" + _varint(number) + _field(0x1A, _utf8(text))
        if len(_SEVERITIES) < _MAX_CACHED:
            _SEVERITIES[number_and_text] = written
    return written


class OtlpProtobufLogs(OtlpLogs):
    """One ``resource_logs`` element per record, laid end to end."""

    content_type = CONTENT_TYPE
    framing = Framing()
    accepts = (
        "OTLP/HTTP logs in protobuf (HTTP_ENDPOINT is https://HOST:4318/v1/logs; OTLP_PROTOCOL=http/json "
        "for a receiver that takes only JSON)"
    )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._resources = BoundedCache()
        self._pb_shapes = BoundedCache()

    def encode(self, record: dict[str, Any]) -> bytes:
        """The record as one resource_logs element, its attributes written from the template of its shape."""
        values = tuple(record.values())
        kind = (record.get("log_type"), tuple(record), tuple(map(type, values)))
        shape: _Shape | None = self._pb_shapes.get(kind)
        if shape is None:
            shape = self._pb_shapes.keep(kind, _Shape(*kind))
        where = (shape.resource_fields, shape.resource(values))
        try:
            wraps: _Wraps | None = self._resources.get(where)
        except TypeError:  # a list in one of those fields (a JSON log line's own "elb"): not cached
            wraps = None
        if wraps is None:
            wraps = self._resources.keep(where, _Wraps(*where))
        log_record = shape.opening(values) + (shape.fill(values) or _attributes(record))
        return wraps[len(log_record)] + log_record


class _Wraps(dict[int, bytes]):
    """Length of a LogRecord -> the bytes of the resource_logs element before it, for one resource: the
    element's tag and length, the resource, the scope_logs tag and length, the scope, the log_records tag
    and length."""

    def __init__(self, fields: tuple[str, ...], values: tuple[Any, ...]) -> None:
        super().__init__()
        where = dict(zip(fields, values, strict=True))
        pairs = resource_attributes(*(where.get(field) for field in RESOURCE_FIELDS))
        self._resource = _field(0x0A, b"".join(_field(0x0A, _key_value(name, v)) for name, v in pairs))
        self._scope = _field(
            0x0A, _field(0x0A, SCOPE_NAME.encode()) + _field(0x12, forwarder.__version__.encode())
        )

    def __missing__(self, length: int) -> bytes:
        scope_logs = len(self._scope) + 1 + len(_varint(length)) + length
        resource_logs = len(self._resource) + 1 + len(_varint(scope_logs)) + scope_logs
        head = (
            b"\x0a"
            + _varint(resource_logs)
            + self._resource
            + b"\x12"
            + _varint(scope_logs)
            + self._scope
            + b"\x12"
            + _varint(length)
        )
        if len(self) < _MAX_CACHED:
            self[length] = head
        return head
