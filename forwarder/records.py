"""Lines of one unit (an S3 object, a CloudWatch Logs batch) -> records ready to send: parsed fields plus
the provenance fields the unit's source gives each line.

Every line gives exactly one record, in order: a line that does not parse is sent as
`{"raw": ..., "parse_error": ...}` so nothing is dropped and the failure is visible downstream.
Each record carries a deterministic `event_id` (from its source's provenance), so a redelivered unit
(S3 and SNS deliver at least once; Lambda retries) produces the same ids and the receiver can deduplicate.
With INCLUDE_RAW_LINE a parsed record also carries the line it was parsed from, in `raw_line`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from hashlib import blake2b
from typing import Any

from forwarder.parsers import ParseError, ParseFunction, detect_message, failure_reason, parser_for
from forwarder.reader import Line

__all__ = [
    "RAW_LINE_FIELD",
    "identity_hash",
    "iter_records",
    "normalize_etag",
    "object_id",
    "record_event_id",
]

# The original line of a parsed record (INCLUDE_RAW_LINE); a line that did not parse is in `raw` already.
RAW_LINE_FIELD = "raw_line"

# Adds a source's provenance fields (its identity of the line, event_id included) to the record of line n.
Provenance = Callable[[dict[str, Any], int], None]

logger = logging.getLogger(__name__)

_OBJECT_ID_BYTES = 12  # 24 hex characters, then 8 for the line number


def normalize_etag(etag: str) -> str:
    """ETag without surrounding quotes: GetObject returns `"abc"`, S3 event records `abc`."""
    return etag.strip().strip('"')


def record_event_id(bucket: str | None, key: str, etag: str, line_number: int) -> str:
    """Stable id of one line of one object version: 32 hex characters.

    The first 24 are BLAKE2b-96 of the object's identity (bucket, key, quote-stripped ETag), the
    last 8 the line number in hex: ids of one object share a prefix and sort by line, and the
    per-line cost is a string format instead of a hash.
    """
    return f"{object_id(bucket, key, etag)}{line_number:08x}"


def object_id(bucket: str | None, key: str, etag: str) -> str:
    """The 24 hex characters every event_id of one object version starts with."""
    return identity_hash((bucket or "", key, normalize_etag(etag)), _OBJECT_ID_BYTES)


def identity_hash(parts: Iterable[str], digest_size: int) -> str:
    """BLAKE2b of the parts, in hex. Each part is length-prefixed ("<bytes>:<value>,"), so no content can
    make two different tuples hash the same input."""
    identity = b""
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass")
        identity += b"%d:%s," % (len(raw), raw)
    return blake2b(identity, digest_size=digest_size).hexdigest()


def iter_records(
    lines: Iterable[Line],
    *,
    log_type: str | None,
    provenance: Provenance,
    vpc_flow_fields: tuple[str, ...] | None = None,
    parse: ParseFunction | None = None,
    include_raw_line: bool = False,
    first_line: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yield one record per line, in order, never dropping one.

    Each record: the parsed fields (or raw + parse_error), then log_type, the fields
    `provenance(record, line_number)` adds (1-based; they win over parsed fields of the same name, so a
    message cannot forge its event_id), and `truncated: true` for a line cut at the size limit. An empty line
    gives raw "" with parse_error "empty line". `log_type` None detects each line's format on its own
    (CloudWatch Logs messages); a line of no known format is then sent raw, without a parse error. `parse`
    is the parse function of a custom format named `log_type`, instead of the built-in one.
    `include_raw_line` adds the line as it was read (cut, if truncated) to each parsed record, in `raw_line`.
    `first_line` is the number of the first of `lines` (a continuation resumes part-way through a unit).
    """
    if parse is None:
        parse = parser_for(log_type or "raw", vpc_flow_fields=vpc_flow_fields)
    warned = False
    for number, line in enumerate(lines, first_line):
        text = line.text
        kind: str = log_type or "raw"
        record: dict[str, Any]
        parsed = False
        if not text:
            record = {"raw": "", "parse_error": "empty line"}
        elif log_type is None:
            kind, record = detect_message(text, vpc_flow_fields=vpc_flow_fields)
            parsed = kind != "raw"
        else:
            try:
                record = parse(text)
                parsed = kind != "raw"
            except ParseError as exc:
                # A line cut at the size limit is broken by the cut, not of another format.
                reason = str(exc) if line.truncated else failure_reason(log_type, text, exc)
                record = {"raw": text, "parse_error": reason}
            except Exception as exc:  # noqa: BLE001 - a parser bug on one odd line must not lose the object
                record = {"raw": text, "parse_error": f"parser failure: {type(exc).__name__}"}
                if not warned:
                    warned = True
                    logger.warning(
                        "parser failure on a %s line (%s, line %d); the line is sent raw",
                        log_type,
                        type(exc).__name__,
                        number,
                    )
        if parsed and include_raw_line:
            record[RAW_LINE_FIELD] = text
        record["log_type"] = kind
        provenance(record, number)
        if line.truncated:
            record["truncated"] = True
        yield record
