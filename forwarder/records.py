"""Lines of one S3 object -> records ready to send: parsed fields plus where they came from.

Every line gives exactly one record, in order: a line that does not parse is sent as
`{"raw": ..., "parse_error": ...}` so nothing is dropped and the failure is visible downstream.
Each record carries a deterministic `event_id`, so a redelivered object (S3 and SNS deliver at
least once; Lambda retries) produces the same ids and the receiver can deduplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from hashlib import blake2b
from typing import Any

from forwarder.parsers import ParseError, failure_reason, parser_for
from forwarder.reader import Line

__all__ = ["iter_records", "normalize_etag", "record_event_id"]

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
    return f"{_object_id(bucket, key, etag)}{line_number:08x}"


def _object_id(bucket: str | None, key: str, etag: str) -> str:
    # Each part is length-prefixed ("<bytes>:<value>,"), so no bucket, key or ETag content can
    # make two different triples hash the same input.
    identity = b""
    for part in (bucket or "", key, normalize_etag(etag)):
        raw = part.encode("utf-8", "surrogatepass")
        identity += b"%d:%s," % (len(raw), raw)
    return blake2b(identity, digest_size=_OBJECT_ID_BYTES).hexdigest()


def iter_records(
    lines: Iterable[Line], *, log_type: str, bucket: str | None, key: str, etag: str
) -> Iterator[dict[str, Any]]:
    """Yield one record per line, in order, never dropping one.

    Each record: the parsed fields (or raw + parse_error), then log_type, s3_bucket, s3_key,
    line_number (1-based), event_id, and `truncated: true` for a line cut at the size limit.
    An empty line gives raw "" with parse_error "empty line". `bucket` may be None for a local
    file (the CLI); it then hashes like "".
    """
    parse = parser_for(log_type)
    object_id = _object_id(bucket, key, etag)
    warned = False
    for number, line in enumerate(lines, 1):
        text = line.text
        if text:
            try:
                record = parse(text)
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
        else:
            record = {"raw": "", "parse_error": "empty line"}
        record["log_type"] = log_type
        record["s3_bucket"] = bucket
        record["s3_key"] = key
        record["line_number"] = number
        record["event_id"] = f"{object_id}{number:08x}"
        if line.truncated:
            record["truncated"] = True
        yield record
