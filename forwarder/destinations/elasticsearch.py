"""``elasticsearch``: the ``_bulk`` API of Elasticsearch and OpenSearch, one ``create`` per record.

Each record is an action line ``{"create":{"_index":...,"_id":event_id}}`` and the record with
``@timestamp`` (the log line's time). ``create`` refuses an ``_id`` that exists with 409, so a record
resent after a retry is not indexed twice: a 409 counts as delivered (a duplicate). ``_bulk`` answers 200
even when items failed, with ``"errors": true`` and one item per action in request order; the items are
paired with the records sent by position (never by ``_id``, which an ingest pipeline may rewrite):
429 and 5xx items are sent again alone, other item errors (mapping conflicts) are rejections.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from forwarder import jsonutil
from forwarder.config import ES_DOCUMENT_ID, ES_DOCUMENT_ID_EVENT_ID, ES_DOCUMENT_ID_NONE, ES_INDEX
from forwarder.destinations import (
    DELIVERED,
    BoundedCache,
    Framing,
    Rejection,
    Verdict,
    short_reason,
    status_verdict,
)

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

# Date placeholders of ES_INDEX and where each sits in an ISO 8601 time ("2025-03-14T09:30:00.123456Z").
_PLACEHOLDERS = {"%Y": slice(0, 4), "%m": slice(5, 7), "%d": slice(8, 10), "%H": slice(11, 13)}
_PLACEHOLDER = re.compile(r"%.?")
_ISO_HOUR = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
# Index names (Elasticsearch "Create index API", also OpenSearch): lowercase; none of \ / * ? " < > | ,
# # : or space; not starting with -, _ or +; not . or ..; at most 255 bytes.
_FORBIDDEN = frozenset('\\/*?"<>|,#: ')
_MAX_INDEX_BYTES = 255
_SAMPLE_HOUR = "2025-03-14T09"


def index_problems(template: str | None) -> list[str]:
    """What is wrong with an ES_INDEX value (none when it is usable)."""
    if not template:
        return [f"{ES_INDEX} is required when OUTPUT_FORMAT=elasticsearch (an index or data stream name)"]
    unknown = sorted({p for p in _PLACEHOLDER.findall(template) if p not in _PLACEHOLDERS})
    if unknown:
        allowed = ", ".join(_PLACEHOLDERS)
        return [f"{ES_INDEX} may use only {allowed} as date placeholders (got {', '.join(unknown)})"]
    name = _render(template, _SAMPLE_HOUR)
    problems = []
    if name != name.lower():
        problems.append("must be lowercase")
    bad = sorted(set(name) & _FORBIDDEN)
    if bad:
        problems.append(f"must not contain {' '.join(repr(ch) for ch in bad)}")
    if name[0] in "-_+" or name in (".", ".."):
        problems.append("must not start with -, _ or + nor be . or ..")
    if len(name.encode()) > _MAX_INDEX_BYTES:
        problems.append(f"must be at most {_MAX_INDEX_BYTES} bytes")
    return [f"{ES_INDEX} {problem} (got {template!r})" for problem in problems]


def _render(template: str, hour: str) -> str:
    """The template with each placeholder replaced by its part of ``hour`` ("YYYY-MM-DDTHH")."""
    return _PLACEHOLDER.sub(lambda match: hour[_PLACEHOLDERS[match.group()]], template)


def _record_time(record: dict[str, Any]) -> str:
    """The record's ISO 8601 ``time``; else the CloudWatch Logs event's ``event_time``; else the sending
    time (a line that did not parse has no time of its own)."""
    for name in ("time", "event_time"):
        value = record.get(name)
        if isinstance(value, str) and _ISO_HOUR.match(value):
            return value
    return _utc_now()


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


class ElasticsearchBulk:
    """``_bulk`` NDJSON: an action line and a document line per record."""

    name = "elasticsearch"
    # "When sending requests to the _bulk endpoint, the Content-Type header should be set to
    # application/x-ndjson". Elasticsearch and OpenSearch take Content-Encoding: gzip bodies; Amazon
    # OpenSearch Service only with http_compression.enabled (its default from Elasticsearch 7.x on).
    content_type = "application/x-ndjson"
    # "The final line of data must end with a newline character": every item ends with one.
    framing = Framing()
    extra_headers = ()
    accepts = "the _bulk API (HTTP_ENDPOINT is https://HOST:PORT/_bulk)"

    def __init__(self, config: Config) -> None:
        if config.es_index is None or index_problems(config.es_index):
            raise ValueError(f"invalid {ES_INDEX}: {'; '.join(index_problems(config.es_index))}")
        self._template = config.es_index
        self._names = BoundedCache()
        # With the event_id as _id a resent line is answered 409 (already there); without, the intake
        # gives every document an id of its own (OpenSearch Serverless time series collections take no
        # other), and a line resent after an answer that never came may be indexed twice.
        self._with_id = config.es_document_id == ES_DOCUMENT_ID_EVENT_ID

    def encode(self, record: dict[str, Any]) -> bytes:
        """The create action and the document, dated by ``_record_time``."""
        when = record.get("time")
        # Names are cached by hour; only a time not seen yet is checked for its ISO 8601 shape.
        index = self._names.get(when[:13]) if isinstance(when, str) else None
        if index is None:
            when = _record_time(record)
            index = self._index(when[:13])
        record["@timestamp"] = when
        # Index names are checked (no '"' or '\'), event ids are hex: both go into the JSON unescaped.
        if self._with_id:
            action = b'{"create":{"_index":"%s","_id":"%s"}}\n' % (index, record["event_id"].encode())
        else:
            action = b'{"create":{"_index":"%s"}}\n' % index
        return action + jsonutil.dumps_line(record)

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """Read a _bulk answer item by item, by position; a non-2xx concerns the whole request."""
        verdict = status_verdict(response, sent)
        if verdict is not None:
            return verdict
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors is False:  # every item succeeded: nothing to pair (a filter_path may even drop items)
            return DELIVERED
        items = answer.get("items") if isinstance(answer, dict) else None
        if errors is not True or not isinstance(items, list):
            return Verdict(
                refused=True,
                failure=f"answered HTTP {response.status} without a _bulk response (no errors and items); "
                "check that HTTP_ENDPOINT is the _bulk URL",
            )
        if len(items) != sent.records:
            return Verdict(
                refused=True,
                failure=f"the _bulk response has {len(items)} items for the {sent.records} documents sent, "
                "so they cannot be paired; check for a proxy between the forwarder and the cluster",
            )
        return _read_items(items)

    def _index(self, hour: str) -> bytes:
        name: bytes | None = self._names.get(hour)
        if name is None:
            name = self._names.keep(hour, _render(self._template, hour).encode())
        return name


def _read_items(items: list[Any]) -> Verdict:
    retry: list[int] = []
    rejected: list[Rejection] = []
    duplicates = 0
    first_retry_reason = ""
    for position, item in enumerate(items):
        # Each item is keyed by its action's name: {"create": {"status": 201, ...}}.
        result = item.get("create") if isinstance(item, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, int):
            rejected.append(Rejection(position, f"unreadable _bulk item: {short_reason(json.dumps(item))}"))
        elif 200 <= status <= 299:
            continue
        elif status == 409:  # create of an _id already indexed: delivered before (a retry resent it)
            duplicates += 1
        elif status == 429 or 500 <= status <= 599:
            retry.append(position)
            first_retry_reason = first_retry_reason or _reason(status, result)
        else:
            rejected.append(Rejection(position, _reason(status, result)))
    failure = (
        f"{len(retry)} of {len(items)} documents were not indexed yet (first: {first_retry_reason})"
        if retry
        else ""
    )
    return Verdict(
        retry=tuple(retry),
        failure=failure,
        rejected=len(rejected),
        rejections=tuple(rejected),
        duplicates=duplicates,
    )


# OpenSearch Serverless's item error for a document id sent to a time series or vector search collection.
_NO_DOCUMENT_ID = "Document ID is not supported"


def _reason(status: int, result: Any) -> str:
    error = result.get("error") if isinstance(result, dict) else None
    if isinstance(error, dict):
        reason = short_reason(f"{status} {error.get('type', 'error')}: {error.get('reason', '')}")
    else:
        reason = short_reason(f"{status} {error or 'error'}")
    if _NO_DOCUMENT_ID in reason:
        reason += (
            f" (an OpenSearch Serverless time series or vector search collection takes no document ids: "
            f"set {ES_DOCUMENT_ID}={ES_DOCUMENT_ID_NONE})"
        )
    return reason
