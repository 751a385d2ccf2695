"""What the pipeline forwards: units that succeed or fail whole, each yielding records with an identity.

Two sources: an S3 object (the lines of one object version, identified by bucket, key, ETag and line
number) and a CloudWatch Logs subscription delivery (forwarder.cloudwatch). The pipeline sees only the
`Unit` protocol; parsers and records.py see only the provenance fields a source gives each line.

An S3 object may be forwarded from a line on: a work item (forwarder.work) names the object version, its
ETag and the first line, and the unit checks the ETag before reading, so the lines keep their numbers and
their event_ids those of a run that read the object in one go.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any, Protocol

from forwarder.cloudwatch import LogsBatch, LogsBatchUnit
from forwarder.config import Config
from forwarder.events import Announced
from forwarder.metrics import ObjectStats
from forwarder.parsers import detect_log_type
from forwarder.reader import CorruptObjectError, Line, compression_for, iter_lines
from forwarder.records import Provenance, iter_records, object_id
from forwarder.source import ObjectChangedError, ObjectCorruptError, S3Client, open_object
from forwarder.work import ORIGIN_CONTINUATION, WorkItem

__all__ = ["S3ObjectUnit", "Unit", "object_provenance", "unit_for"]


class Unit(Protocol):
    """One unit of work: its counters, its records (reading starts here), and what it raises at the end."""

    def new_stats(self) -> ObjectStats: ...

    def records(self, stats: ObjectStats, config: Config) -> Iterator[dict[str, Any]]: ...

    def finish(self, stats: ObjectStats) -> None: ...

    def rest(self, stats: ObjectStats, next_line: int) -> WorkItem | None:
        """The work item that forwards the unit from ``next_line`` on, or None if it cannot be continued."""
        ...


def unit_for(announced: Announced, *, s3: S3Client) -> Unit:
    """The unit that forwards what an event announced."""
    if isinstance(announced, LogsBatch):
        return LogsBatchUnit(announced)
    if isinstance(announced, WorkItem):
        return S3ObjectUnit(
            s3,
            announced.bucket,
            announced.key,
            version_id=announced.version_id,
            etag=announced.etag,
            start_line=announced.start_line,
            invocation=announced.invocation,
            rejected_earlier=announced.rejected,
        )
    return S3ObjectUnit(s3, announced.bucket, announced.key, version_id=announced.version_id)


def object_provenance(bucket: str | None, key: str, etag: str) -> Provenance:
    """The provenance of line `n` of an object version: s3_bucket, s3_key, line_number and event_id.

    `bucket` may be None for a local file (the CLI); it then hashes like "".
    """
    prefix = object_id(bucket, key, etag)

    def provenance(record: dict[str, Any], number: int) -> None:
        # Set one by one: this runs once per line, and a dict built per line costs more.
        record["s3_bucket"] = bucket
        record["s3_key"] = key
        record["line_number"] = number
        record["event_id"] = f"{prefix}{number:08x}"

    return provenance


class S3ObjectUnit:
    """The lines of one S3 object, streamed; gzip damage is raised once the lines before it are sent.

    With ``etag`` (a work item's), the object must still have that ETag, and it is forwarded from
    ``start_line`` on: the lines before are read and counted, not parsed or sent.
    """

    __slots__ = (
        "_damage",
        "_s3",
        "_version_read",
        "bucket",
        "etag",
        "invocation",
        "key",
        "rejected_earlier",
        "start_line",
        "version_id",
    )

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        etag: str | None = None,
        start_line: int = 1,
        invocation: int = 1,
        rejected_earlier: int = 0,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        self.etag = etag
        self.start_line = start_line
        self.invocation = invocation
        self.rejected_earlier = rejected_earlier
        self._damage: list[CorruptObjectError] = []
        self._version_read: str | None = None

    def new_stats(self) -> ObjectStats:
        return ObjectStats(
            bucket=self.bucket,
            key=self.key,
            invocation=self.invocation,
            start_line=self.start_line,
            rejected_earlier=self.rejected_earlier,
        )

    def records(self, stats: ObjectStats, config: Config) -> Iterator[dict[str, Any]]:
        try:
            obj = open_object(self._s3, self.bucket, self.key, version_id=self.version_id, if_match=self.etag)
        except ObjectChangedError as exc:
            raise ObjectChangedError(
                f"{exc}; lines {self.start_line} to the end of the version with ETag {self.etag} were not "
                "delivered, and are not resumed from the new version (its line numbers, and so its "
                "event_ids, would not be the same lines). The new version is forwarded from its own "
                "notification; to forward the rest of the old one, restore it (a versioned bucket keeps it)"
                " and replay it"
            ) from exc
        stats.etag = obj.etag
        self._version_read = obj.version_id
        lines = _until_damage(
            iter_lines(
                _count_bytes(obj.chunks, stats),
                compressed=compression_for(obj.key),
                max_line_bytes=config.max_line_bytes,
                skip_lines=self.start_line - 1,
            ),
            self._damage,
        )
        first = next(lines, None)
        custom = config.formats.format_for_key(obj.key)
        if custom is not None:
            stats.log_type = custom.name
        else:
            stats.log_type = detect_log_type(obj.key, first.text if first is not None else None)
        if first is None:
            return iter(())
        return iter_records(
            chain((first,), lines),
            log_type=stats.log_type,
            provenance=object_provenance(obj.bucket, obj.key, obj.etag),
            vpc_flow_fields=config.formats.vpc_flow_fields,
            parse=custom.parse if custom is not None else None,
            include_raw_line=config.include_raw_line,
            first_line=self.start_line,
        )

    def rest(self, stats: ObjectStats, next_line: int) -> WorkItem | None:
        """This object version from ``next_line`` on, for the next invocation of the chain."""
        if stats.etag is None:
            return None  # never opened: nothing says which version the line numbers belong to
        return WorkItem(
            bucket=self.bucket,
            key=self.key,
            etag=stats.etag,
            start_line=next_line,
            # A versioned bucket: the next invocation reads this version, even if the key is overwritten.
            version_id=self.version_id or self._version_read,
            invocation=self.invocation + 1,
            origin=ORIGIN_CONTINUATION,
            rejected=self.rejected_earlier + stats.rejected,
        )

    def finish(self, stats: ObjectStats) -> None:
        if self._damage:
            # Raised only once every line before the damage was delivered: whatever can be read arrives,
            # and the object still fails, so it is retried and then kept in the dead-letter queue.
            raise ObjectCorruptError(
                f"{stats.uri} is not valid gzip ({self._damage[0]}); the {stats.lines} lines before the "
                f"damage were read and {stats.records_sent} records sent. Check that the object is a "
                "complete ELB log file (not truncated, re-encoded or appended to)"
            ) from self._damage[0]


def _until_damage(lines: Iterator[Line], damage: list[CorruptObjectError]) -> Iterator[Line]:
    """The lines up to the first damaged byte; the damage is kept in `damage` instead of raised."""
    try:
        yield from lines
    except CorruptObjectError as exc:
        damage.append(exc)


def _count_bytes(chunks: Iterator[bytes], stats: ObjectStats) -> Iterator[bytes]:
    for chunk in chunks:
        stats.bytes_raw += len(chunk)
        yield chunk
