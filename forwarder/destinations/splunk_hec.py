"""``splunk_hec``: Splunk's HTTP Event Collector, ``POST /services/collector/event``, one event per record.

Each record travels in HEC's event envelope ``{"time", "host", "source", "sourcetype", "index", "event"}``:
``time`` in epoch seconds from the log line (or the CloudWatch Logs event), ``host`` the load balancer,
``source`` the S3 URI (or ``log_group:log_stream``). HEC takes several envelopes in one body, one after
another ("batched events"), and answers the whole request with
``{"text": ..., "code": N}``: 0 success; 9 "Server is busy" (503) is worth another try; 6 "Invalid data
format" (400, with ``invalid-event-number``) is not, and fails with HEC's text; 2, 3 and 4 (401/403) are
credential problems. HEC keeps no document id: a resent batch is indexed again, so ``event_id`` travels
in the event for searches to deduplicate.

With indexer acknowledgement on the token (``SPLUNK_ACK=true``) a 200 only means HEC took the request:
it answers ``{"text": "Success", "code": 0, "ackId": N}`` for the request's channel
(``X-Splunk-Request-Channel``, required then), and ``POST /services/collector/ack`` with
``{"acks": [N]}`` answers ``{"acks": {"N": true}}`` once the events are indexed. The batch counts as
delivered only then; the sender polls within the invocation's time, and an ack still pending when the
time is up is a transient failure (the batch is sent again, by the platform's retry if need be).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from forwarder import jsonutil
from forwarder.config import HTTP_ENDPOINT, OUTPUT_FORMAT, SPLUNK_INDEX, SPLUNK_SOURCETYPE
from forwarder.destinations import (
    DELIVERED,
    BoundedCache,
    Confirmation,
    Framing,
    Verdict,
    is_retryable_status,
    record_time_ns,
    status_verdict,
)

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

# HEC's event endpoint; "/services/collector" and ".../event/1.0" are the same endpoint.
_EVENT_PATH = re.compile(r"/services/collector(?:/event(?:/1\.0)?)?/?$")
# Index names: lowercase letters, digits, "_" and "-", not starting with "_" or "-" (indexes.conf).
_INDEX = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CODE_BUSY = 9
_REASON_CHARS = 200
# First wait before asking for an ack, doubled after each "not yet" up to the cap (Splunk's guidance is
# to poll at an interval, not per event; Vector asks every 10 s).
_ACK_FIRST_WAIT = 1.0
_ACK_MAX_WAIT = 10.0


def settings_problems(endpoint: str, sourcetype: str, index: str | None) -> list[str]:
    """What is wrong with the settings of OUTPUT_FORMAT=splunk_hec (none when they are usable)."""
    problems = []
    if endpoint and not _EVENT_PATH.search(urlsplit(endpoint).path):
        problems.append(
            f"{HTTP_ENDPOINT} must be HEC's event URL when {OUTPUT_FORMAT}=splunk_hec "
            "(https://HOST:8088/services/collector/event)"
        )
    if _CONTROL.search(sourcetype):
        problems.append(f"{SPLUNK_SOURCETYPE} must not contain control characters")
    if index is not None and not _INDEX.fullmatch(index):
        problems.append(
            f"{SPLUNK_INDEX} must be a Splunk index name: lowercase letters, digits, '_' and '-', not "
            f"starting with '_' or '-' (got {index!r})"
        )
    return problems


def ack_url(endpoint: str) -> str:
    """The ack endpoint next to the event endpoint ``endpoint`` (query string kept)."""
    parts = urlsplit(endpoint)
    path = _EVENT_PATH.sub("/services/collector/ack", parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class SplunkHec:
    """HEC event envelopes, one per record, one after another."""

    name = "splunk_hec"
    content_type = "application/json"
    framing = Framing(separator=b"\n")
    accepts = "HEC events (HTTP_ENDPOINT is https://HOST:8088/services/collector/event)"

    def __init__(self, config: Config) -> None:
        self._ack = config.splunk_ack
        self._ack_url = ack_url(config.endpoint)
        self._sourcetype = config.splunk_sourcetype
        self._index = config.splunk_index
        self._heads = BoundedCache()
        # One channel per process: ack ids are numbered per channel.
        channel = str(uuid.uuid4())
        self.extra_headers: tuple[tuple[str, str], ...] = (
            (("X-Splunk-Request-Channel", channel),) if self._ack else ()
        )

    def encode(self, record: dict[str, Any]) -> bytes:
        """The event envelope; a line without a readable time gets HEC's receive time (no ``time``)."""
        get = record.get
        where = (get("elb"), get("s3_bucket"), get("s3_key"), get("log_group"), get("log_stream"))
        try:
            head = self._heads.get(where)
        except TypeError:  # an unhashable "elb" of a JSON log line: not cached
            head = None
        if head is None:
            head = self._head(record, where)
        event = jsonutil.dumps(record)
        nanoseconds = record_time_ns(record)
        if nanoseconds is None:
            return head + event + b"}"
        # Epoch seconds with microseconds, as a JSON number.
        return b'%s%s,"time":%d.%06d}' % (head, event, *divmod(nanoseconds // 1000, 1_000_000))

    def _head(self, record: dict[str, Any], where: tuple[Any, ...]) -> bytes:
        """The envelope up to its event, for the records of one load balancer and file (or log stream)."""
        envelope: dict[str, Any] = {}
        host = record.get("elb")
        if isinstance(host, str) and host:
            envelope["host"] = host
        envelope["source"] = _source(record)
        envelope["sourcetype"] = self._sourcetype
        if self._index:
            envelope["index"] = self._index
        head: bytes = self._heads.keep(where, jsonutil.dumps(envelope)[:-1] + b',"event":')
        return head

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """Read HEC's answer to the events; with acks on, a 200 asks for the ack of its ``ackId``."""
        answer = _answer(response.body)
        code = answer.get("code")
        if response.status == 503 or code == _CODE_BUSY:
            return Verdict(retry=tuple(range(sent.records)), failure=f"HEC {_text(response, answer)}")
        if 200 <= response.status <= 299:
            if not self._ack:
                return DELIVERED
            ack_id = answer.get("ackId")
            if not isinstance(ack_id, int):
                return Verdict(
                    refused=True,
                    failure="HEC answered without an ackId although SPLUNK_ACK=true: enable indexer "
                    "acknowledgement on the token, or set SPLUNK_ACK=false",
                )
            return Verdict(confirm=self._confirmation(ack_id, _ACK_FIRST_WAIT))
        if response.status == 400 and isinstance(code, int):
            failure = f"HEC refused the events: {_text(response, answer)}"
            number = answer.get("invalid-event-number")
            if isinstance(number, int) and 0 <= number < sent.records:
                failure += f" (event {sent.original_position(number) + 1} of the batch)"
            return Verdict(refused=True, failure=failure)
        return status_verdict(response, sent) or DELIVERED

    def _confirmation(self, ack_id: int, wait: float) -> Confirmation:
        def read(response: HttpResponse, sent: Batch) -> Verdict:
            return self._read_ack(response, sent, ack_id, wait)

        body = b'{"acks":[%d]}' % ack_id
        return Confirmation(self._ack_url, body, read, wait, f"ackId {ack_id}")

    def _read_ack(self, response: HttpResponse, sent: Batch, ack_id: int, wait: float) -> Verdict:
        """``{"acks": {"N": true}}``: indexed; false: ask again later; an error about acks: refused."""
        del sent
        later = self._confirmation(ack_id, min(wait * 2, _ACK_MAX_WAIT))
        if is_retryable_status(response.status):
            return Verdict(confirm=later)  # HEC busy: the events were taken, ask again
        answer = _answer(response.body)
        if not 200 <= response.status <= 299:
            return Verdict(refused=True, failure=f"HEC's ack endpoint refused: {_text(response, answer)}")
        acks = answer.get("acks")
        if isinstance(acks, dict) and acks.get(str(ack_id)) is True:
            return DELIVERED
        return Verdict(confirm=later)


def _source(record: dict[str, Any]) -> str:
    """The S3 URI of the line's file; for a CloudWatch Logs event, its log group and stream."""
    if "s3_key" in record:
        return f"s3://{record.get('s3_bucket') or ''}/{record['s3_key']}"
    return f"{record.get('log_group', '')}:{record.get('log_stream', '')}"


def _answer(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _text(response: HttpResponse, answer: dict[str, Any]) -> str:
    """HEC's own words: 'Server is busy (code 9, HTTP 503)'."""
    text = answer.get("text")
    words = _CONTROL.sub(" ", str(text))[:_REASON_CHARS] if text else "no text"
    code = answer.get("code")
    return (
        f"{words} (code {code}, HTTP {response.status})"
        if code is not None
        else f"{words} (HTTP {response.status})"
    )
