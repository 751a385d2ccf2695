"""The two HTTP servers the demo runs on 127.0.0.1.

- `IngestReceiver`: stands for the log intake of one output format. It checks the credential the way
  that intake reads it (constant-time compare), gunzips the body (bounded), decodes and validates it in
  that format's shape, stores the records and answers as the intake does (INTAKES).
- `ResponseReceiver`: stands for the pre-signed S3 URL CloudFormation gives a custom resource. It speaks
  HTTPS with a certificate from a private CA made for this run (the provisioner only answers over HTTPS)
  and keeps every answer PUT to it.
"""

from __future__ import annotations

import hmac
import json
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

# A decompressed request larger than this is refused (the forwarder sends 4 MiB batches by default).
MAX_BODY_BYTES = 64 * 1024 * 1024


# Records kept whole per source file, as samples; the rest is only counted.
SAMPLES_PER_FILE = 20


class BodyError(ValueError):
    """A request body that is not in the intake's format."""


@dataclass(frozen=True, slots=True)
class Item:
    """One record as it arrived (``shown``: its text in the body's format) and its forwarder fields."""

    record: dict[str, Any]
    shown: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request the receiver refused, and why."""

    status: int
    reason: str


@dataclass(slots=True)
class FileTally:
    """What arrived for one source file (records carry s3_key and line_number) or log group."""

    records: int = 0
    line_numbers: set[int] = field(default_factory=set)
    unparseable: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # parse_error -> first raw line
    samples: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        record = item.record
        self.records += 1
        number = record.get("line_number")
        if isinstance(number, int):
            self.line_numbers.add(number)
        if "parse_error" in record:
            self.unparseable += 1
            self.errors.setdefault(str(record["parse_error"]), str(record.get("raw", "")))
        elif len(self.samples) < SAMPLES_PER_FILE:
            self.samples.append(item)


_SHOWN_WIDTH = 96


def _show(value: Any, indent: int = 0) -> str:
    """JSON for a person: one level per line, but what fits in a line on one (OTLP's KeyValues)."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or indent + len(flat) <= _SHOWN_WIDTH:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        parts = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_show(v, indent + 2)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(parts) + "\n" + " " * indent + "}"
    parts = [inner + _show(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(parts) + "\n" + " " * indent + "]"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BodyError(f"{what} is not an object")
    return value


def _json_lines(data: bytes, what: str) -> list[dict[str, Any]]:
    """Newline-separated JSON objects (ndjson, _bulk, HEC's batched events)."""
    try:
        return [_object(json.loads(line), what) for line in data.split(b"\n") if line.strip()]
    except ValueError as exc:
        raise BodyError(f"a line is not JSON: {exc}") from None


def _decode_json(data: bytes) -> list[Item]:
    document = _object(json.loads(data), "the body")
    logs = document.get("logs")
    if not isinstance(logs, list):
        raise BodyError('body is not {"logs": [...]}')
    return [Item(_object(entry, "a logs entry"), _show(entry)) for entry in logs]


def _decode_ndjson(data: bytes) -> list[Item]:
    return [Item(record, _show(record)) for record in _json_lines(data, "a line")]


def _decode_bulk(data: bytes) -> list[Item]:
    """_bulk: an action line {"create": {"_index", "_id"}} then the document, whose event_id is the _id."""
    lines = _json_lines(data, "a _bulk line")
    if len(lines) % 2:
        raise BodyError("a _bulk action has no document line")
    items = []
    for action, document in zip(lines[::2], lines[1::2], strict=True):
        create = _object(action.get("create"), 'the action {"create": ...}')
        if not create.get("_index") or create.get("_id") != document.get("event_id"):
            raise BodyError("an action has no _index or an _id other than its document's event_id")
        items.append(Item(document, json.dumps(action) + "\n" + _show(document)))
    return items


def _decode_hec(data: bytes) -> list[Item]:
    """HEC: events {"time", "host", "source", "sourcetype", "event": {...}} one after the other."""
    items = []
    for envelope in _json_lines(data, "an HEC event"):
        items.append(Item(_object(envelope.get("event"), 'an HEC event\'s "event"'), _show(envelope)))
    return items


def _decode_loki(data: bytes) -> list[Item]:
    """Loki push: {"streams": [{"stream": {labels}, "values": [["<ns>", "<line>"], ...]}]}."""
    streams = _object(json.loads(data), "the body").get("streams")
    if not isinstance(streams, list):
        raise BodyError('body is not {"streams": [...]}')
    items = []
    for stream in streams:
        values = _object(stream, "a stream").get("values")
        if not isinstance(_object(stream.get("stream"), "a stream's labels"), dict) or not isinstance(
            values, list
        ):
            raise BodyError('a stream is not {"stream": {...}, "values": [...]}')
        for value in values:
            if not (isinstance(value, list) and len(value) == 2 and str(value[0]).isdigit()):
                raise BodyError('a value is not ["<nanoseconds>", "<line>"]')
            items.append(Item(_object(json.loads(value[1]), "a line"), _show(stream)))
    return items


def _decode_datadog(data: bytes) -> list[Item]:
    """Datadog: a JSON array of entries, the record's fields beside ddsource, service, hostname."""
    entries = json.loads(data)
    if not isinstance(entries, list):
        raise BodyError("body is not a JSON array of log entries")
    items = []
    for entry in entries:
        if not isinstance(_object(entry, "an entry").get("ddsource"), str):
            raise BodyError("an entry has no ddsource")
        items.append(Item(entry, _show(entry)))
    return items


# OTLP attributes under OpenTelemetry's names that the demo's checks read under the forwarder's.
_OTLP_FIELDS = {"aws.s3.key": "s3_key"}


def _decode_otlp(data: bytes) -> list[Item]:
    """ExportLogsServiceRequest: resourceLogs -> scopeLogs -> logRecords, attributes as AnyValues."""
    resources = _object(json.loads(data), "the body").get("resourceLogs")
    if not isinstance(resources, list):
        raise BodyError('body is not {"resourceLogs": [...]}')
    items = []
    for resource in resources:
        described = _otlp_attributes(
            _object(resource.get("resource") or {}, "a Resource").get("attributes") or []
        )
        # A CloudWatch Logs event's log group is its resource's aws.log.group.names.
        groups = described.get("aws.log.group.names")
        origin = {"log_group": groups[0]} if groups else {}
        for scope in _object(resource, "a ResourceLogs").get("scopeLogs") or []:
            for log in _object(scope, "a ScopeLogs").get("logRecords") or []:
                record = origin | _otlp_attributes(_object(log, "a LogRecord").get("attributes") or [])
                if "body" in log:
                    record["raw"] = _otlp_value(log["body"])
                shown = {**resource, "scopeLogs": [{**scope, "logRecords": [log]}]}
                items.append(Item(record, _show(shown)))
    return items


def _otlp_attributes(attributes: list[Any]) -> dict[str, Any]:
    record = {}
    for attribute in attributes:
        key = _object(attribute, "an attribute").get("key")
        if not isinstance(key, str):
            raise BodyError("an attribute has no key")
        record[_OTLP_FIELDS.get(key, key)] = _otlp_value(attribute.get("value"))
    return record


def _otlp_value(value: Any) -> Any:
    """An AnyValue: int64 as a decimal string, arrays and key-value lists nested."""
    value = _object(value, "an AnyValue")
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_otlp_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _otlp_attributes(value["kvlistValue"].get("values", []))
    for kind in ("stringValue", "doubleValue", "boolValue"):
        if kind in value:
            return value[kind]
    raise BodyError(f"an AnyValue of no known kind: {sorted(value)}")


@dataclass(frozen=True, slots=True)
class Intake:
    """How one output format's intake takes logs: its path, credential, body and success answer."""

    path: str
    content_type: str
    decode: Callable[[bytes], list[Item]]
    auth: str = "bearer"  # the stack's AuthType for it
    status: int = 200
    answer: Callable[[list[Item]], bytes] = lambda items: json.dumps({"accepted": len(items)}).encode()
    # What it answers a wrong credential (HEC: 403 "Invalid token", code 4; Datadog: 403 Forbidden).
    refusal: tuple[int, bytes] = (401, b'{"error":"missing or wrong bearer token"}')


def _bulk_answer(items: list[Item]) -> bytes:
    created = [
        {"create": {"_id": item.record.get("event_id"), "status": 201, "result": "created"}} for item in items
    ]
    return json.dumps({"took": 1, "errors": False, "items": created}).encode()


INTAKES: dict[str, Intake] = {
    "json": Intake("/ingest", "application/json", _decode_json),
    "ndjson": Intake("/ingest", "application/x-ndjson", _decode_ndjson),
    "elasticsearch": Intake("/_bulk", "application/x-ndjson", _decode_bulk, answer=_bulk_answer),
    "splunk_hec": Intake(
        "/services/collector/event",
        "application/json",
        _decode_hec,
        auth="splunk",
        answer=lambda items: b'{"text":"Success","code":0}',
        refusal=(403, b'{"text":"Invalid token","code":4}'),
    ),
    "loki": Intake(
        "/loki/api/v1/push", "application/json", _decode_loki, status=204, answer=lambda items: b""
    ),
    "datadog": Intake(
        "/api/v2/logs",
        "application/json",
        _decode_datadog,
        auth="apikey",
        status=202,
        answer=lambda items: b"{}",
        refusal=(403, b'{"errors":["Forbidden"]}'),
    ),
    # An empty ExportLogsServiceResponse: no partial success, every record accepted.
    "otlp": Intake("/v1/logs", "application/json", _decode_otlp, answer=lambda items: b"{}"),
}


class IngestReceiver:
    """HTTP log intake of one output format on 127.0.0.1, accepting only the given credential.

    It counts what arrives per source file (and keeps a few records of each) rather than storing every
    record, so a long run does not grow without bound.
    """

    def __init__(self, token: str, output_format: str = "json") -> None:
        self._token = token.encode()
        self.output_format = output_format
        self.intake = INTAKES[output_format]
        self.path = self.intake.path
        self._lock = threading.Lock()
        self.files: dict[str, FileTally] = {}
        self.records = 0
        self.unparseable = 0
        self.duplicates = 0
        self._event_ids: set[str] = set()
        self.batches = 0
        self.rejections: list[Rejection] = []
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ingest", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _authorized(self, headers: Any) -> bool:
        if self.intake.auth == "apikey":  # Datadog reads the key from DD-API-KEY only
            presented = (headers.get("DD-API-KEY") or "").strip()
        else:
            scheme, _, presented = (headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != self.intake.auth:
                return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def check(self, headers: Any, raw: bytes) -> tuple[list[Item], Rejection | None]:
        """The items of one request, or why it is refused."""
        intake = self.intake
        if not self._authorized(headers):
            status, body = intake.refusal
            return [], Rejection(status, f"missing or wrong credential ({body.decode()})")
        if (headers.get("Content-Encoding") or "").lower() != "gzip":
            return [], Rejection(415, "Content-Encoding is not gzip")
        if not (headers.get("Content-Type") or "").lower().startswith(intake.content_type):
            return [], Rejection(415, f"Content-Type is not {intake.content_type}")
        try:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(raw, MAX_BODY_BYTES)
            if inflater.unconsumed_tail:
                return [], Rejection(413, f"more than {MAX_BODY_BYTES} bytes once decompressed")
        except zlib.error as exc:
            return [], Rejection(400, f"body is not gzip: {exc}")
        try:
            return intake.decode(data), None
        except BodyError as exc:
            return [], Rejection(400, f"body is not {self.output_format}: {exc}")
        except (ValueError, TypeError, AttributeError) as exc:
            return [], Rejection(400, f"body is not {self.output_format}: {type(exc).__name__}: {exc}")

    def _store(self, items: list[Item], rejection: Rejection | None, at: float) -> None:
        with self._lock:
            if rejection is not None:
                self.rejections.append(rejection)
                return
            for item in items:
                record = item.record
                # A log file's records carry its s3_key; a CloudWatch Logs event's its log_group.
                source = record.get("s3_key") or record.get("log_group")
                self.files.setdefault(str(source), FileTally()).add(item)
                event_id = str(record.get("event_id"))
                if event_id in self._event_ids:
                    self.duplicates += 1
                self._event_ids.add(event_id)
                self.unparseable += "parse_error" in record
            self.records += len(items)
            self.batches += 1
            self.first_at = at if self.first_at is None else self.first_at
            self.last_at = at

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                if self.path.split("?", 1)[0] != receiver.path:
                    self._answer(404, b'{"error":"not found"}')
                    return
                items, rejection = receiver.check(self.headers, raw)
                receiver._store(items, rejection, time.monotonic())
                intake = receiver.intake
                if rejection is None:
                    self._answer(intake.status, intake.answer(items))
                elif rejection.status == intake.refusal[0]:
                    self._answer(*intake.refusal)
                else:
                    self._answer(rejection.status, json.dumps({"error": rejection.reason}).encode())

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                if status != 204:  # RFC 9110: a 204 carries no Content-Length
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@dataclass(frozen=True, slots=True)
class Put:
    """One request PUT to the response URL: what CloudFormation would have received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> dict[str, Any]:
        """The answer document (or what could be read of it, under ``unreadable``)."""
        try:
            document: dict[str, Any] = json.loads(self.body)
        except ValueError:
            return {"unreadable": self.body[:200].decode(errors="replace")}
        return document


class ResponseReceiver:
    """HTTPS server on 127.0.0.1 standing in for CloudFormation's pre-signed response URL.

    It keeps every PUT; ``fail_with`` lists statuses to answer, in order, before answering 200 again (how
    a test sees the provisioner retry a failed answer)."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_file = str(directory / "cloudformation-response-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._lock = threading.Lock()
        self.puts: list[Put] = []
        self.fail_with: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.puts.append(Put("PUT", self.path, headers, body))
                    status = receiver.fail_with.pop(0) if receiver.fail_with else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cfn-response",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url_for(self, request_id: str) -> str:
        """Shaped like CloudFormation's pre-signed S3 URL (the query string is what carries the signature)."""
        return (
            f"https://127.0.0.1:{self.port}/cloudformation-custom-resource-response-useast1/"
            f"arn%3Aaws%3Acloudformation/{request_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Date=20250101T000000Z&X-Amz-Expires=7200&X-Amz-Signature=demo"
        )

    def puts_for(self, request_id: str) -> list[Put]:
        with self._lock:
            return [put for put in self.puts if f"/{request_id}?" in put.path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
