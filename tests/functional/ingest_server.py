"""A real HTTP(S) log receiver on 127.0.0.1 for tests and the demo.

It accepts what the forwarder sends in one output format (``intake``: gzip JSON ``{"logs": [...]}``,
gzip NDJSON, Elasticsearch's ``_bulk`` or OTLP/HTTP JSON logs), records every request, and can be scripted
to misbehave: answer with any status (429 with Retry-After, 500, 401 ...), hang without answering, drip the
answer a byte at a time, reset the connection, or quote a request header back (in the body, in a malformed
header line or as the status line). Requests that break the contract (not gzip, not JSON, no ``logs`` list, a
bad ``_bulk`` action) get a 400 and are recorded with the reason.

The ``elasticsearch`` intake keeps documents by (index, _id) and answers ``_bulk`` as Elasticsearch
documents it: 200 with ``errors`` and one item per action, in request order; ``create`` of an existing
id answers 409, and ``fail_items`` scripts 429, 5xx or 400 (mapping conflict) answers for given ids.
With ``takes_ids=False`` it is an OpenSearch Serverless time series (or vector search) collection: an
action with an ``_id`` answers 400 "Document ID is not supported in create/index operation request", one
without gets an id of the collection's own.
The ``otlp`` intake flattens each log record to its attributes (with ``_resource``, ``_time`` and
``_body``) and answers as the OTLP specification documents: 200 with an empty ``ExportLogsServiceResponse``,
or with ``partialSuccess`` (``rejectedLogRecords`` and ``errorMessage``) when ``reject_records`` named
some of the records sent; scripted 429/502/503/504 (with Retry-After) and 400 are answered as scripted.
Scripted non-2xx replies, and 2xx replies with a body of their own, are answered as they are.

The ``splunk_hec`` intake answers as HEC documents it: ``{"text": "Success", "code": 0}``, 400 code 6
"Invalid data format" with ``invalid-event-number`` for a body that is not event envelopes, and
``hec_busy()`` / ``hec_invalid(n)`` script its 503 code 9 and 400 code 6. With ``hec_ack`` it requires
``X-Splunk-Request-Channel`` (400 code 10 without), answers each request's ``ackId`` and serves
``/services/collector/ack``, where an ack turns true only after ``ack_after`` polls for it; its
``records()`` are then the events of acknowledged requests.

The ``loki`` intake takes Loki's JSON push body and answers 204; it keeps each entry once by (labels,
timestamp, line), dropping exact duplicates as Loki does, and with ``loki_oldest_ns`` or
``loki_max_line`` it stores the valid entries of a push and answers 400 with Loki's text for the first
invalid one; its ``records()`` are the entries it holds. With ``loki_tenant`` it is a multi-tenant Loki
(``auth_enabled``): a push without that ``X-Scope-OrgID`` is answered 401 "no org id".

With ``sigv4`` (any intake) every request must carry an AWS Signature Version 4 that the server recomputes
with botocore's own signer from the request as received (method, path, the headers it names as signed, the
body's bytes) and the credentials it was given; a request without one, with another credential scope, an
unsigned Content-Encoding, a body that does not match X-Amz-Content-SHA256, a date more than 5 minutes off
or a signature that does not match is answered 403 as OpenSearch does, and recorded with the reason.

The ``datadog`` intake takes a JSON array of log entries and answers 202 ``{}``, or 413 for a request
above the intake's documented limits (1000 entries, 5 MB uncompressed), and with ``api_key`` 403 unless
``DD-API-KEY`` carries it.

    with IngestServer() as server:
        server.script(Reply(429, headers={"Retry-After": "1"}), Reply(500))  # then 200s
        ... point HTTP_ENDPOINT at server.url ...
        assert server.event_ids() == expected
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import hmac
import json
import re
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with this status, headers and body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"status":"ok"}'


@dataclass(frozen=True, slots=True)
class Hang:
    """Read the request, then answer nothing for ``seconds`` (or until the server stops); then close."""

    seconds: float = 30.0


@dataclass(frozen=True, slots=True, eq=False)
class Hold:
    """Read the request, then answer ``reply`` once ``release`` is set, or after ``seconds`` if it is not
    (the server's ``holds`` says which, per held request: True when released)."""

    release: threading.Event
    reply: Reply = field(default_factory=Reply)
    seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Drip:
    """Answer ``reply`` one byte every ``interval`` seconds from the start of ``part`` ("status": the whole
    answer, "headers": after the status line, "body": after the headers); stop when the client leaves."""

    reply: Reply = field(default_factory=Reply)
    interval: float = 0.05
    part: str = "status"


@dataclass(frozen=True, slots=True)
class Reset:
    """Read the request, then drop the connection with a TCP reset instead of answering."""


@dataclass(frozen=True, slots=True)
class Reflect:
    """Answer ``status`` quoting the request's ``header`` back to the client.

    ``where``: "body" (in a JSON body and in an ``X-Echo`` header), "header_line" (as a header line
    without a colon, which HTTP clients report as unparseable) or "status_line" (in place of the status
    code, so the answer is not HTTP at all).
    """

    status: int = 400
    header: str = "Authorization"
    where: str = "body"


Action = Reply | Hang | Hold | Drip | Reset | Reflect


@dataclass(frozen=True, slots=True)
class SigV4Check:
    """The credentials and scope the server expects requests to be signed with."""

    access_key: str
    secret_key: str
    token: str | None
    service: str
    region: str


# OpenSearch's 403 bodies: the request is not signed as AWS computes it, or not within 5 minutes.
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
    r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_MAX_SKEW_SECONDS = 300


def signature_error(check: SigV4Check, path: str, headers: dict[str, str], raw: bytes) -> str | None:
    """Why the request's SigV4 signature is not valid for ``check`` (None when it is), recomputed with
    botocore's signer from the headers the request names as signed and its body."""
    found = _AUTHORIZATION.fullmatch(_header(headers, "Authorization") or "")
    if found is None:
        return "Authorization header requires a SigV4 signature"
    if (found["key"], found["region"], found["service"]) != (check.access_key, check.region, check.service):
        return f"credential scope {found['key']}/{found['region']}/{found['service']} is not the expected one"
    signed = found["signed"].split(";")
    missing = [
        name
        for name in ("host", "x-amz-date", "x-amz-content-sha256", "content-encoding")
        if name not in signed
    ]
    if missing:
        return f"headers not signed: {', '.join(missing)}"
    if _header(headers, "X-Amz-Content-SHA256") != hashlib.sha256(raw).hexdigest():
        return "The provided 'x-amz-content-sha256' header does not match what was computed."
    if check.token is not None and _header(headers, "X-Amz-Security-Token") != check.token:
        return "The security token included in the request is invalid."
    amz_date = _header(headers, "X-Amz-Date") or ""
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"bad X-Amz-Date {amz_date!r}"
    if abs((datetime.now(UTC) - when).total_seconds()) > _MAX_SKEW_SECONDS or amz_date[:8] != found["day"]:
        return "Signature expired: the request was signed more than 5 minutes ago"
    request = AWSRequest(
        method="POST",
        url=f"http://{_header(headers, 'Host')}{path}",
        data=raw,
        headers={name: _header(headers, name) or "" for name in signed},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(check.access_key, check.secret_key, check.token), check.service, check.region
    )
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if hmac.compare_digest(expected, found["signature"]) else SIGNATURE_MISMATCH


INTAKES = ("json", "ndjson", "elasticsearch", "splunk_hec", "loki", "datadog", "otlp")
LOKI_PUSH_PATH = "/loki/api/v1/push"
DATADOG_LOGS_PATH = "/api/v2/logs"
DATADOG_MAX_ENTRIES = 1000
DATADOG_MAX_BYTES = 5_000_000

HEC_EVENT_PATH = "/services/collector/event"
HEC_ACK_PATH = "/services/collector/ack"

# The path each intake is posted to, as the forwarder requires HTTP_ENDPOINT to end for that format
# (json and ndjson take any path).
INTAKE_PATHS = {
    "json": "/ingest",
    "ndjson": "/ingest",
    "elasticsearch": "/_bulk",
    "splunk_hec": HEC_EVENT_PATH,
    "loki": LOKI_PUSH_PATH,
    "datadog": DATADOG_LOGS_PATH,
    "otlp": "/v1/logs",
}


def hec_busy() -> Reply:
    """HEC's answer when its queues are full: 503, code 9."""
    return Reply(503, body=b'{"text":"Server is busy","code":9}')


def hec_invalid(event_number: int) -> Reply:
    """HEC's answer to a body with a bad event: 400, code 6, the (0-based) number of the first bad one."""
    body = {"text": "Invalid data format", "code": 6, "invalid-event-number": event_number}
    return Reply(400, body=json.dumps(body).encode())


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    logs: tuple[dict[str, Any], ...]
    status: int
    error: str | None = None
    actions: tuple[dict[str, Any], ...] = ()  # _bulk: the action line of each document in ``logs``
    item_statuses: tuple[int, ...] = ()  # _bulk: the status answered for each item
    ack_id: int | None = None  # HEC: the ackId answered for the request
    rejected: frozenset[str] = frozenset()  # otlp: event_ids refused by a partial success
    received_at: float = 0.0  # time.monotonic() when the request had been read
    answered_at: float = 0.0  # and when its answer had been written (0: not answered)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


class IngestServer:
    """Thread-based receiver; ``url`` is ready once the object exists. Use as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/ingest",
        ssl_context: ssl.SSLContext | None = None,
        default: Action | None = None,
        intake: str = "json",
        hec_ack: bool = False,
        ack_after: int = 0,
        loki_oldest_ns: int | None = None,
        loki_max_line: int | None = None,
        loki_tenant: str | None = None,
        api_key: str | None = None,
        sigv4: SigV4Check | None = None,
        takes_ids: bool = True,
    ) -> None:
        if intake not in INTAKES:
            raise ValueError(f"unknown intake {intake!r}")
        self.intake = intake
        self.path = path
        self.hec_ack = hec_ack
        self.ack_after = ack_after
        self._acks: dict[tuple[str, int], int] = {}  # (channel, ackId) -> polls so far
        self._acked: set[tuple[str, int]] = set()
        self._next_ack: dict[str, int] = {}
        self.loki_oldest_ns = loki_oldest_ns
        self.loki_max_line = loki_max_line
        self.loki_tenant = loki_tenant
        self.api_key = api_key
        self.sigv4 = sigv4
        self.takes_ids = takes_ids
        self._loki_keys: set[tuple[Any, ...]] = set()
        self._loki_entries: list[dict[str, Any]] = []
        self._documents: dict[tuple[str, str], dict[str, Any]] = {}
        self._item_failures: dict[str, deque[int]] = {}
        self._to_reject: set[str] = set()
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._default: Action = default or Reply()
        self._requests: list[ReceivedRequest] = []
        self.holds: list[bool] = []  # per Hold answered: released (True) or timed out (False)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ingest-server",
            daemon=True,
        )
        self._thread.start()

    # --- control ----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    def script(self, *actions: Action) -> None:
        """Queue answers for the next requests, in order; afterwards the default answer applies."""
        with self._lock:
            self._script.extend(actions)

    def set_default(self, action: Action) -> None:
        with self._lock:
            self._default = action

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._documents.clear()
            self._item_failures.clear()
            self._to_reject.clear()

    def reset_requests(self) -> None:
        """Forget the requests received (documents stay indexed)."""
        with self._lock:
            self._requests.clear()

    def fail_items(self, failures: dict[str, list[int]]) -> None:
        """_bulk: answer these statuses, in turn, for the next actions on each _id; then index normally."""
        with self._lock:
            for doc_id, statuses in failures.items():
                self._item_failures.setdefault(doc_id, deque()).extend(statuses)

    def reject_records(self, event_ids: Iterable[str]) -> None:
        """otlp: refuse these records (once each) with a partial success; the others are accepted."""
        with self._lock:
            self._to_reject.update(event_ids)

    def documents(self) -> dict[tuple[str, str], dict[str, Any]]:
        """_bulk: the documents stored, by (index, _id)."""
        with self._lock:
            return dict(self._documents)

    def close(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> IngestServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what was received -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[ReceivedRequest]:
        """Requests answered with 2xx: the batches the sender may consider delivered."""
        return [r for r in self.requests if 200 <= r.status <= 299]

    def records(self) -> list[dict[str, Any]]:
        """Every record of every accepted request, in arrival order (HEC with acks: acknowledged ones;
        Loki: the entries it holds; OTLP: not those a partial success refused)."""
        if self.intake == "loki":
            with self._lock:
                return [strict_json(entry["line"]) for entry in self._loki_entries]
        requests = self.accepted()
        if self.hec_ack:
            with self._lock:
                acked = set(self._acked)
            requests = [r for r in requests if (r.header("X-Splunk-Request-Channel"), r.ack_id) in acked]
        return [
            record
            for request in requests
            for record in request.logs
            if record.get("event_id") not in request.rejected
        ]

    def event_ids(self) -> list[str]:
        return [str(record.get("event_id")) for record in self.records()]

    # --- internals ---------------------------------------------------------------------------------------

    def _next_action(self) -> Action:
        with self._lock:
            return self._script.popleft() if self._script else self._default

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _answered(self, request: ReceivedRequest) -> None:
        """Note when ``request``'s answer was written."""
        with self._lock:
            where = next(i for i, r in enumerate(self._requests) if r is request)
            self._requests[where] = dataclasses.replace(request, answered_at=time.monotonic())

    def _wait_hang(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _bulk(
        self, actions: tuple[dict[str, Any], ...], documents: tuple[dict[str, Any], ...]
    ) -> tuple[Reply, tuple[int, ...]]:
        items = []
        with self._lock:
            for action, document in zip(actions, documents, strict=True):
                create = action["create"]
                if not self.takes_ids:
                    if "_id" in create:
                        items.append(_bulk_item(create, 400, _NO_DOCUMENT_ID))
                        continue
                    create = {**create, "_id": f"aoss-{len(self._documents) + 1}"}
                key = (create["_index"], create["_id"])
                failures = self._item_failures.get(str(document.get("event_id")))
                if failures:
                    status = failures.popleft()
                elif key in self._documents:
                    status = 409
                else:
                    self._documents[key] = document
                    status = 201
                items.append(_bulk_item(create, status))
        statuses = tuple(item["create"]["status"] for item in items)
        body = {"took": 3, "errors": any(status >= 300 for status in statuses), "items": items}
        return Reply(200, body=json.dumps(body).encode()), statuses

    def loki_entries(self) -> list[dict[str, Any]]:
        """Loki: the entries held, as {"stream", "ts", "line"}, in arrival order."""
        with self._lock:
            return list(self._loki_entries)

    def _loki_push(self, entries: tuple[dict[str, Any], ...]) -> Reply:
        """Store the valid entries (once each); 204, or 400 with Loki's text for the first invalid one."""
        first_error = None
        with self._lock:
            for entry in entries:
                labels = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(entry["stream"].items())) + "}"
                if self.loki_oldest_ns is not None and int(entry["ts"]) < self.loki_oldest_ns:
                    first_error = first_error or (
                        f"entry for stream '{labels}' has timestamp too old: {entry['ts']}, oldest "
                        f"acceptable timestamp is: {self.loki_oldest_ns}"
                    )
                    continue
                size = len(entry["line"].encode())
                if self.loki_max_line is not None and size > self.loki_max_line:
                    first_error = first_error or (
                        f"Max entry size '{self.loki_max_line}' bytes exceeded for stream '{labels}' while "
                        f"adding an entry with length '{size}' bytes"
                    )
                    continue
                key = (tuple(sorted(entry["stream"].items())), entry["ts"], entry["line"])
                if key not in self._loki_keys:  # Loki drops an entry identical to one it holds
                    self._loki_keys.add(key)
                    self._loki_entries.append(entry)
        if first_error:
            return Reply(
                400, headers={"Content-Type": "text/plain; charset=utf-8"}, body=first_error.encode()
            )
        return Reply(204, body=b"")

    def _datadog(self, headers: dict[str, str], raw: bytes, entries: tuple[dict[str, Any], ...]) -> Reply:
        """202 ``{}``; 403 for a wrong key; 413 above 1000 entries or 5 MB uncompressed."""
        if self.api_key is not None and _header(headers, "DD-API-KEY") != self.api_key:
            return Reply(403, body=b'{"errors":["Forbidden"]}')
        if len(entries) > DATADOG_MAX_ENTRIES or len(gzip.decompress(raw)) > DATADOG_MAX_BYTES:
            return Reply(413, body=b'{"errors":["Payload too large"]}')
        return Reply(202, body=b"{}")

    def _hec_success(self, headers: dict[str, str]) -> tuple[Reply, int | None]:
        """HEC's 200; with acks, the request's ackId on its channel (HEC numbers them per channel)."""
        if not self.hec_ack:
            return Reply(200, body=b'{"text":"Success","code":0}'), None
        channel = _header(headers, "X-Splunk-Request-Channel")
        if not channel:
            return Reply(400, body=b'{"text":"Data channel is missing","code":10}'), None
        with self._lock:
            ack_id = self._next_ack.get(channel, 0)
            self._next_ack[channel] = ack_id + 1
            self._acks[(channel, ack_id)] = 0
        return Reply(200, body=json.dumps({"text": "Success", "code": 0, "ackId": ack_id}).encode()), ack_id

    def _hec_ack(self, headers: dict[str, str], raw: bytes) -> Reply:
        """``{"acks": [ids]}`` -> ``{"acks": {"id": bool}}``; an id turns true after ``ack_after`` polls."""
        channel = _header(headers, "X-Splunk-Request-Channel")
        if not self.hec_ack:
            return Reply(400, body=b'{"text":"ACK is disabled","code":14}')
        if not channel:
            return Reply(400, body=b'{"text":"Data channel is missing","code":10}')
        try:
            ids = strict_json(raw)["acks"]
        except (ValueError, KeyError, TypeError):
            return Reply(400, body=b'{"text":"Invalid data format","code":6}')
        answer = {}
        with self._lock:
            for ack_id in ids:
                key = (channel, ack_id)
                polls = self._acks.get(key)
                if polls is None:
                    answer[str(ack_id)] = False
                    continue
                self._acks[key] = polls + 1
                if polls >= self.ack_after:
                    self._acked.add(key)
                answer[str(ack_id)] = key in self._acked
        return Reply(200, body=json.dumps({"acks": answer}).encode())

    def _export(
        self, logs: tuple[dict[str, Any], ...], headers: dict[str, str]
    ) -> tuple[Reply, frozenset[str]]:
        """otlp: the ExportLogsServiceResponse, with a partial success for the records to reject, in the
        request's encoding (OTLP/HTTP: "The server MUST use the same Content-Type in the response as it
        received in the request")."""
        with self._lock:
            rejected = frozenset(r["event_id"] for r in logs if r.get("event_id") in self._to_reject)
            self._to_reject -= rejected
        message = "log record too old to ingest"
        if _header(headers, "Content-Type") == OTLP_PROTOBUF:
            from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

            response = logs_service_pb2.ExportLogsServiceResponse()
            if rejected:
                response.partial_success.rejected_log_records = len(rejected)
                response.partial_success.error_message = message
            body = response.SerializeToString()
            return Reply(200, headers={"Content-Type": OTLP_PROTOBUF}, body=body), rejected
        if not rejected:
            return Reply(200, body=b"{}"), rejected
        partial = {"rejectedLogRecords": str(len(rejected)), "errorMessage": message}
        return Reply(200, body=json.dumps({"partialSuccess": partial}).encode()), rejected


OTLP_PROTOBUF = "application/x-protobuf"
_CONTENT_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "splunk_hec": "application/json",
    "loki": "application/json",
    "datadog": "application/json",
    "otlp": "application/json",
}


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def decode_body(
    headers: dict[str, str], raw: bytes, intake: str = "json"
) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """Check a request body against the forwarder's contract; return its records or the reason it fails.

    For ``elasticsearch`` the records alternate: action, document, action, document ...
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get("content-encoding", "").lower() != "gzip":
        return (), "Content-Encoding is not gzip"
    content_type = lowered.get("content-type", "").lower()
    # Elasticsearch takes _bulk bodies as application/x-ndjson (or application/json).
    wanted = (
        ("application/x-ndjson", "application/json") if intake == "elasticsearch" else _CONTENT_TYPES[intake]
    )
    if intake == "otlp":  # OTLP/HTTP: binary protobuf or JSON
        wanted = (OTLP_PROTOBUF, "application/json")
    if not content_type.startswith(wanted):
        return (), f"Content-Type is not {_CONTENT_TYPES.get(intake, 'application/x-ndjson')}"
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        return (), f"body is not valid gzip: {exc}"
    if intake == "splunk_hec":
        return _decode_hec(data)
    if intake == "loki":
        return _decode_loki(data)
    if intake == "datadog":
        return _decode_datadog(data)
    if intake == "otlp":
        return _decode_otlp(data, protobuf=content_type.startswith(OTLP_PROTOBUF))
    if intake != "json":
        return _decode_lines(data, intake)
    try:
        document = strict_json(data)
    except ValueError as exc:
        return (), f"body is not JSON: {exc}"
    if not isinstance(document, dict) or set(document) != {"logs"} or not isinstance(document["logs"], list):
        return (), 'body is not {"logs": [...]}'
    logs = document["logs"]
    if not all(isinstance(item, dict) for item in logs):
        return (), "a logs entry is not an object"
    return tuple(logs), None


def _refuse_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON (RFC 8259 has no NaN or Infinity)")


def strict_json(data: bytes | str) -> Any:
    """JSON as intakes read it (Elasticsearch, Go's and Rust's decoders): RFC 8259, so no NaN or
    Infinity, and UTF-8 only (bytes that are not UTF-8 raise, as a ValueError)."""
    return json.loads(data, parse_constant=_refuse_constant)


def _decode_lines(data: bytes, intake: str) -> tuple[tuple[dict[str, Any], ...], str | None]:
    # _bulk: "The final line of data must end with a newline character"; NDJSON lines end with one too.
    if not data.endswith(b"\n"):
        return (), "the body does not end with a newline"
    items = []
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        try:
            item = strict_json(line)
        except ValueError as exc:
            return (), f"line {number} is not JSON: {exc}"
        if not isinstance(item, dict):
            return (), f"line {number} is not an object"
        items.append(item)
    if intake == "elasticsearch":
        if len(items) % 2:
            return (), "an action has no document"
        for action in items[::2]:
            create = action.get("create")
            keys = set(create) - {"_id"} if isinstance(create, dict) else None
            if set(action) != {"create"} or keys != {"_index"}:
                return (), f"action is not create with _index (and _id): {action}"
    return tuple(items), None


def _decode_hec(data: bytes) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """HEC's batched events: JSON envelopes one after another, each with an ``event``."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return (), "invalid-event-number 0"
    envelopes = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            break
        try:
            envelope, position = decoder.raw_decode(text, position)
        except ValueError:
            return (), f"invalid-event-number {len(envelopes)}"
        if not isinstance(envelope, dict) or "event" not in envelope:
            return (), f"invalid-event-number {len(envelopes)}"
        envelopes.append(envelope)
    if not envelopes:
        return (), "no data"
    return tuple(envelopes), None


def _decode_datadog(data: bytes) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """Datadog's logs body: a JSON array of log entries (objects)."""
    try:
        entries = strict_json(data)
    except ValueError as exc:
        return (), f"body is not JSON: {exc}"
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        return (), "body is not an array of log entries"
    return tuple(entries), None


def _decode_loki(data: bytes) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """Loki's push body, as one {"stream", "ts", "line"} per value: labels, a nanosecond string, a line."""
    try:
        document = strict_json(data)
    except ValueError as exc:
        return (), f"error parsing push request: {exc}"
    streams = document.get("streams") if isinstance(document, dict) else None
    if not isinstance(streams, list):
        return (), 'body is not {"streams": [...]}'
    entries = []
    for stream in streams:
        labels = stream.get("stream") if isinstance(stream, dict) else None
        values = stream.get("values") if isinstance(stream, dict) else None
        if (
            not isinstance(labels, dict)
            or not labels
            or not all(isinstance(v, str) and v for v in labels.values())
        ):
            return (), "error at least one label pair is required per stream"
        if not isinstance(values, list):
            return (), "a stream has no values"
        for value in values:
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                return (), f"a value is not [timestamp, line]: {value}"
            if not value[0].isdigit():
                return (), f"timestamp is not nanoseconds as a string: {value[0]}"
            entries.append({"stream": labels, "ts": value[0], "line": value[1]})
    return tuple(entries), None


def _decode_otlp(data: bytes, *, protobuf: bool = False) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """An ExportLogsServiceRequest in OTLP's JSON mapping, or in protobuf (read with the official
    opentelemetry-proto package, then put in the JSON mapping) -> one flat dict per log record."""
    if protobuf:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        try:
            request = logs_service_pb2.ExportLogsServiceRequest.FromString(data)
        except DecodeError as exc:
            return (), f"body is not a protobuf ExportLogsServiceRequest: {exc}"
        data = json.dumps(MessageToDict(request, use_integers_for_enums=True)).encode()
    try:
        document = strict_json(data)
        records = []
        for resource_logs in document["resourceLogs"]:
            resource = _otlp_attributes(resource_logs["resource"]["attributes"])
            for scope_logs in resource_logs["scopeLogs"]:
                for log_record in scope_logs["logRecords"]:
                    record = _otlp_attributes(log_record.get("attributes", []))
                    record["_resource"] = resource
                    record["_time"] = log_record.get("timeUnixNano")
                    record["_severity"] = log_record.get("severityText")
                    record["_body"] = _otlp_value(log_record["body"]) if "body" in log_record else None
                    if not str(log_record["observedTimeUnixNano"]).isdigit():
                        raise ValueError("observedTimeUnixNano is not a decimal string")
                    if record["_time"] is not None and not record["_time"].isdigit():
                        raise ValueError("timeUnixNano is not a decimal string")
                    records.append(record)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return (), f"body is not an OTLP JSON ExportLogsServiceRequest: {type(exc).__name__}: {exc}"
    return tuple(records), None


def _otlp_attributes(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    flat = {}
    for attribute in attributes:
        if attribute["key"] in flat:
            raise ValueError(f"attribute {attribute['key']} appears twice")
        flat[attribute["key"]] = _otlp_value(attribute["value"])
    return flat


def _otlp_value(value: dict[str, Any]) -> Any:
    """An AnyValue as the JSON mapping writes it: int64 as a decimal string, one key per value."""
    ((kind, inner),) = value.items()
    if kind == "intValue":
        if not isinstance(inner, str):
            raise ValueError(f"intValue {inner!r} is not a string")
        return int(inner)
    if kind == "arrayValue":
        return [_otlp_value(item) for item in inner.get("values", [])]
    if kind == "kvlistValue":
        return _otlp_attributes(inner.get("values", []))
    if kind not in ("stringValue", "boolValue", "doubleValue"):
        raise ValueError(f"unknown AnyValue {kind}")
    return inner


# OpenSearch Serverless's answer to an action with an _id in a time series or vector search collection.
_NO_DOCUMENT_ID = {
    "type": "illegal_argument_exception",
    "reason": "Document ID is not supported in create/index operation request",
}


def _bulk_item(create: dict[str, Any], status: int, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of a _bulk answer's ``items`` for a ``create`` action, shaped as Elasticsearch documents
    it (the item's ``_id`` is the action's, or the one the index gave the document)."""
    index, doc_id = create["_index"], create.get("_id")
    item: dict[str, Any] = {"_index": index, "_id": doc_id, "status": status}
    if error is not None:
        item["error"] = error
    elif status == 201:
        item.update(_version=1, result="created", _shards={"total": 2, "successful": 1, "failed": 0})
    elif status == 409:
        item["error"] = {
            "type": "version_conflict_engine_exception",
            "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])",
            "index": index,
        }
    elif status == 429:
        item["error"] = {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation [shard_detail=[alb-logs][0][C]]",
        }
    elif status == 400:
        item["error"] = {
            "type": "document_parsing_exception",
            "reason": f"[1:42] failed to parse field [elb_status_code] of type [long] in document with id "
            f"'{doc_id}'. Preview of field's value: 'abc'",
            "caused_by": {"type": "illegal_argument_exception", "reason": 'For input string: "abc"'},
        }
    else:
        item["error"] = {
            "type": "unavailable_shards_exception",
            "reason": "[alb-logs][0] primary shard is not active",
        }
    return {"create": item}


def _handler_class(server: IngestServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real intakes do

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            headers = dict(self.headers.items())
            if server.intake == "splunk_hec" and self.path.split("?", 1)[0] == HEC_ACK_PATH:
                reply = server._hec_ack(headers, raw)
                server._record(ReceivedRequest("POST", self.path, headers, raw, (), reply.status))
                self._reply(reply)
                return
            action = server._next_action()
            received_at = time.monotonic()
            if isinstance(action, Hold):
                server.holds.append(action.release.wait(action.seconds))
                action = action.reply
            if isinstance(action, Hang):
                server._record(ReceivedRequest("POST", self.path, headers, raw, (), 0, "hung"))
                server._wait_hang(action.seconds)
                self.close_connection = True
                return
            logs, error = decode_body(headers, raw, server.intake)
            if isinstance(action, Drip | Reset | Reflect):
                # None of these answers is a complete 2xx: nothing here counts as accepted.
                status = action.status if isinstance(action, Reflect) else 0
                name = type(action).__name__.lower()
                server._record(ReceivedRequest("POST", self.path, headers, raw, logs, status, error or name))
                self._misbehave(action, headers)
                return
            actions: tuple[dict[str, Any], ...] = ()
            statuses: tuple[int, ...] = ()
            ack_id = None
            rejected: frozenset[str] = frozenset()
            denied = server.sigv4 and signature_error(server.sigv4, self.path, headers, raw)
            if denied:
                logs, error = (), denied
                reply = Reply(403, body=json.dumps({"message": denied}).encode())
            elif self.path.split("?", 1)[0] != server.path:
                logs, error = (), f"unknown path {self.path}"
                reply = Reply(404, body=b'{"error":"not found"}')
            elif server.loki_tenant is not None and self.headers.get("X-Scope-OrgID") != server.loki_tenant:
                # A multi-tenant Loki (auth_enabled) takes each push for the tenant its header names.
                logs, error = (), "no org id"
                reply = Reply(401, headers={"Content-Type": "text/plain; charset=utf-8"}, body=b"no org id\n")
            elif error is not None and server.intake == "splunk_hec":
                number = int(error.rsplit(" ", 1)[1]) if error.startswith("invalid-event-number") else 0
                reply = (
                    hec_invalid(number)
                    if error != "no data"
                    else Reply(400, body=b'{"text":"No data","code":5}')
                )
            elif error is not None:
                reply = Reply(400, body=json.dumps({"error": error}).encode())
            elif server.intake == "loki":
                actions, logs = logs, tuple(strict_json(entry["line"]) for entry in logs)
                plain = action == Reply(action.status) and action.status < 300
                reply = server._loki_push(actions) if plain else action
            elif server.intake == "datadog":
                plain = action == Reply(action.status) and action.status < 300
                reply = server._datadog(headers, raw, logs) if plain else action
            elif server.intake == "splunk_hec":
                actions, logs = logs, tuple(envelope["event"] for envelope in logs)
                reply = action
                if action == Reply(action.status) and action.status < 300:
                    reply, ack_id = server._hec_success(headers)
            elif server.intake == "elasticsearch" and action == Reply(action.status) and action.status < 300:
                # A plain 2xx is the _bulk answer; a scripted 2xx with its own body is sent as it is.
                actions, logs = logs[::2], logs[1::2]
                reply, statuses = server._bulk(actions, logs)
            elif server.intake == "otlp" and action == Reply(action.status) and action.status < 300:
                reply, rejected = server._export(logs, headers)
            else:
                reply = action
            received = ReceivedRequest(
                "POST",
                self.path,
                headers,
                raw,
                logs,
                reply.status,
                error,
                actions,
                statuses,
                ack_id,
                rejected,
                received_at,
            )
            server._record(received)
            self._reply(reply)
            server._answered(received)

        def do_GET(self) -> None:
            self._reply(Reply(405, body=b'{"error":"POST only"}'))

        def _reply(self, reply: Reply) -> None:
            self.wfile.write(b"".join(_render(reply)))

        def _misbehave(self, action: Drip | Reset | Reflect, headers: dict[str, str]) -> None:
            self.close_connection = True
            if isinstance(action, Reset):
                # SO_LINGER on with a zero timeout: closing sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            if isinstance(action, Reflect):
                self.wfile.write(b"".join(_reflection(action, headers)))
                return
            status_line, head, body = _render(action.reply)
            sent = {"status": b"", "headers": status_line, "body": status_line + head}[action.part]
            rest = (status_line + head + body)[len(sent) :]
            try:
                self.wfile.write(sent)
                for index in range(len(rest)):
                    if server._stopping.wait(action.interval):
                        return
                    self.wfile.write(rest[index : index + 1])
            except OSError:
                return  # the client gave up, as it should

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

    return _Handler


def _render(reply: Reply) -> tuple[bytes, bytes, bytes]:
    """The answer as (status line, header lines and the blank line, body)."""
    status_line = f"HTTP/1.1 {reply.status} {_phrase(reply.status)}\r\n".encode("latin-1")
    headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body)), **reply.headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return status_line, head.encode("latin-1"), reply.body


def _reflection(action: Reflect, headers: dict[str, str]) -> tuple[bytes, bytes, bytes]:
    wanted = action.header.lower()
    value = next((v for k, v in headers.items() if k.lower() == wanted), "")
    body = json.dumps({"error": "malformed request", "received": value}).encode()
    if action.where == "body":
        return _render(Reply(action.status, headers={"X-Echo": value}, body=body))
    status_line, head, body = _render(Reply(action.status, body=body))
    if action.where == "status_line":
        return f"HTTP/1.1 {value}\r\n".encode("latin-1"), head, body
    # The quoted line goes last, after Content-Length, so the answer still has a readable length.
    return status_line, head[:-2] + value.encode("latin-1") + b"\r\n\r\n", body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def serve(actions: Iterable[Action] = (), **kwargs: Any) -> IngestServer:
    """Start a server with a script already queued."""
    server = IngestServer(**kwargs)
    server.script(*actions)
    return server
