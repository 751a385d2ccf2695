"""A local ingest endpoint for the benchmark: accepts gzip POSTs in every output format, counts records.

The path says which intake it plays (INTAKE_PATHS: `/` for json and ndjson, `/_bulk`, HEC's event URL,
Loki's push URL, Datadog's `/api/v2/logs`, OTLP's `/v1/logs`), and it answers as that intake does: any
2xx, HEC's `{"text":"Success","code":0}`, Loki's 204, Datadog's 202, an empty ExportLogsServiceResponse.
It answers as soon as a body has been read, then decompresses and counts it before reading the
connection's next request, so its work overlaps with the forwarder building the next batch (as a real
intake that acknowledges receipt would); only `_bulk`, whose answer has one item per document, counts
first. `GET /stats` waits until every body received so far has been counted and returns the totals as
JSON; `POST /reset` zeroes them.

Run alone (`python scripts/bench/bench_receiver.py`) it prints `PORT <n>` on stdout and serves until stdin
closes, so a parent process can start it, read the port and stop it by closing the pipe.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Each record's "event_id" key appears exactly once in its JSON. Inside a string value a quote is
# escaped (\"), so these exact byte sequences cannot come from log content: counting one counts records.
_EVENT_ID = b'"event_id":'


@dataclass(frozen=True, slots=True)
class Intake:
    """One intake's body shape (how it starts, what marks one record) and its success answer."""

    output_format: str
    prefix: bytes
    mark: bytes
    status: int = 200
    answer: bytes = b""
    content_type: str = "application/json"


INTAKES: dict[str, Intake] = {
    "json": Intake("json", b'{"logs":[', _EVENT_ID),
    "ndjson": Intake("ndjson", b"{", _EVENT_ID),
    # The action line is {"create":{"_index":..,"_id":..}}; the document after it has the event_id.
    "elasticsearch": Intake("elasticsearch", b'{"create":', _EVENT_ID),
    "splunk_hec": Intake("splunk_hec", b'{"', _EVENT_ID, answer=b'{"text":"Success","code":0}'),
    # Each value's line is the record's JSON as a string: its own quotes escaped once (\"event_id\":),
    # those of its values twice, so the key is counted as in the other formats.
    "loki": Intake("loki", b'{"streams":[', b'\\"event_id\\":', status=204),
    "datadog": Intake("datadog", b"[{", _EVENT_ID, status=202, answer=b"{}"),
    "otlp": Intake("otlp", b'{"resourceLogs":[', b'{"key":"event_id",', answer=b"{}"),
}
# OTLP in protobuf, on the same path: each resource_logs element starts with its tag (field 1, bytes), and
# each record has one KeyValue whose key is event_id (field 1, 8 bytes), then its value (field 2); the
# answer is an empty ExportLogsServiceResponse.
_OTLP_PROTOBUF = Intake(
    "otlp", b"\x0a", b"\x0a\x08event_id\x12", answer=b"", content_type="application/x-protobuf"
)
# The path each format is sent to: the one its intake takes logs on (and the forwarder's checks require).
INTAKE_PATHS: dict[str, str] = {
    "json": "/",
    "ndjson": "/ndjson",
    "elasticsearch": "/_bulk",
    "splunk_hec": "/services/collector/event",
    "loki": "/loki/api/v1/push",
    "datadog": "/api/v2/logs",
    "otlp": "/v1/logs",
}
_BY_PATH = {path: INTAKES[name] for name, path in INTAKE_PATHS.items()}
# A _bulk answer item for one created document (Elasticsearch answers one per action, in order).
_BULK_ITEM = b'{"create":{"_index":"bench","result":"created","status":201}}'


class ReceiverStats:
    """Totals over every accepted request; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.records = 0
            self.gzip_bytes = 0
            self.json_bytes = 0
            self.bad_bodies = 0
            self._cpu_start = _cpu_seconds()

    def begin(self) -> None:
        with self._lock:
            self._pending += 1

    def add(self, gzip_bytes: int, body: bytes | None, intake: Intake) -> int:
        """Count one body's records (0 when it is not gzip or not in the intake's shape); return them."""
        records = 0 if body is None or not body.startswith(intake.prefix) else body.count(intake.mark)
        with self._lock:
            self.requests += 1
            self.gzip_bytes += gzip_bytes
            if body is None or not records:
                self.bad_bodies += 1
            else:
                self.json_bytes += len(body)
                self.records += records
            self._pending -= 1
            self._lock.notify_all()
        return records

    def snapshot(self, wait_seconds: float = 60.0) -> dict[str, Any]:
        with self._lock:
            self._lock.wait_for(lambda: self._pending == 0, timeout=wait_seconds)
            return {
                "requests": self.requests,
                "records": self.records,
                "gzip_bytes": self.gzip_bytes,
                "json_bytes": self.json_bytes,
                "bad_bodies": self.bad_bodies,
                "pending": self._pending,
                "cpu_seconds": round(_cpu_seconds() - self._cpu_start, 3),
            }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the forwarder's connection pool expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        # An answer is written as headers, then body: with Nagle's algorithm on, the body waits for the
        # client's delayed ACK of the headers (~40 ms on Linux), which would be counted against every
        # format that answers with a body. Intakes written in Go (Loki, the OpenTelemetry Collector) get
        # TCP_NODELAY by default, as Go sets it on every TCP connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        stats = self.server.stats
        if self.path == "/reset":
            stats.reset()
            self._answer(200, b"{}")
            return
        intake = _BY_PATH.get(self.path.split("?", 1)[0])
        if intake is INTAKES["otlp"] and self.headers.get("Content-Type") == _OTLP_PROTOBUF.content_type:
            intake = _OTLP_PROTOBUF
        if intake is None:
            self._answer(404, b"")
            return
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        stats.begin()
        bulk = intake.output_format == "elasticsearch"
        if not bulk:
            self._answer(intake.status, intake.answer, intake.content_type)
        try:
            body: bytes | None = zlib.decompress(data, 31)
        except zlib.error:
            body = None
        records = stats.add(len(data), body, intake)
        if bulk:
            items = b",".join([_BULK_ITEM] * records)
            self._answer(200, b'{"took":1,"errors":false,"items":[' + items + b"]}")

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._answer(404, b"")
            return
        self._answer(200, json.dumps(self.server.stats.snapshot()).encode())

    def _answer(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        if status != 204:  # RFC 9110: a 204 (Loki's answer) carries no Content-Length
            self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", content_type)
        self.end_headers()
        if payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would cost more than the counting."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stats = ReceiverStats()


def start(port: int = 0) -> tuple[_Server, threading.Thread]:
    """Serve on 127.0.0.1:port (0: any free port) in a daemon thread; return the server and thread."""
    server = _Server(port)
    thread = threading.Thread(target=server.serve_forever, name="bench-receiver", daemon=True)
    thread.start()
    return server, thread


def main() -> int:
    server, _ = start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
