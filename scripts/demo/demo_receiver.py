"""The two HTTP servers the demo runs on 127.0.0.1.

- `IngestReceiver`: stands for the log intake. It checks the bearer token (constant-time compare),
  gunzips the body (bounded), checks the contract ``{"logs": [{...}, ...]}`` and stores the records.
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

# A decompressed request larger than this is refused (the forwarder sends 4 MiB batches by default).
MAX_BODY_BYTES = 64 * 1024 * 1024


# Records kept whole per source file, as samples; the rest is only counted.
SAMPLES_PER_FILE = 20


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request the receiver refused, and why."""

    status: int
    reason: str


@dataclass(slots=True)
class FileTally:
    """What arrived for one source file (records carry s3_key and line_number)."""

    records: int = 0
    line_numbers: set[int] = field(default_factory=set)
    unparseable: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # parse_error -> first raw line
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        number = record.get("line_number")
        if isinstance(number, int):
            self.line_numbers.add(number)
        if "parse_error" in record:
            self.unparseable += 1
            self.errors.setdefault(str(record["parse_error"]), str(record.get("raw", "")))
        elif len(self.samples) < SAMPLES_PER_FILE:
            self.samples.append(record)


class IngestReceiver:
    """HTTP log intake on 127.0.0.1 that accepts only ``Authorization: Bearer <token>``.

    It counts what arrives per source file (and keeps a few records of each) rather than storing every
    record, so a long run does not grow without bound.
    """

    def __init__(self, token: str, *, path: str = "/ingest") -> None:
        self._token = token.encode()
        self.path = path
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

    def check(self, headers: Any, raw: bytes) -> tuple[list[dict[str, Any]], Rejection | None]:
        """The records of one request, or why it is refused."""
        scheme, _, presented = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            return [], Rejection(401, "missing or wrong bearer token")
        if (headers.get("Content-Encoding") or "").lower() != "gzip":
            return [], Rejection(415, "Content-Encoding is not gzip")
        if not (headers.get("Content-Type") or "").lower().startswith("application/json"):
            return [], Rejection(415, "Content-Type is not application/json")
        try:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(raw, MAX_BODY_BYTES)
            if inflater.unconsumed_tail:
                return [], Rejection(413, f"more than {MAX_BODY_BYTES} bytes once decompressed")
        except zlib.error as exc:
            return [], Rejection(400, f"body is not gzip: {exc}")
        try:
            document = json.loads(data)
        except ValueError as exc:
            return [], Rejection(400, f"body is not JSON: {exc}")
        if not isinstance(document, dict) or not isinstance(document.get("logs"), list):
            return [], Rejection(400, 'body is not {"logs": [...]}')
        logs = document["logs"]
        if not all(isinstance(item, dict) for item in logs):
            return [], Rejection(400, "a logs entry is not an object")
        return logs, None

    def _store(self, records: list[dict[str, Any]], rejection: Rejection | None, at: float) -> None:
        with self._lock:
            if rejection is not None:
                self.rejections.append(rejection)
                return
            for record in records:
                self.files.setdefault(str(record.get("s3_key")), FileTally()).add(record)
                event_id = str(record.get("event_id"))
                if event_id in self._event_ids:
                    self.duplicates += 1
                self._event_ids.add(event_id)
                self.unparseable += "parse_error" in record
            self.records += len(records)
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
                    self._answer(404, {"error": "not found"})
                    return
                records, rejection = receiver.check(self.headers, raw)
                receiver._store(records, rejection, time.monotonic())
                if rejection is not None:
                    self._answer(rejection.status, {"error": rejection.reason})
                else:
                    self._answer(200, {"accepted": len(records)})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer the custom resource PUT to its ResponseURL."""

    path: str
    document: dict[str, Any]
    size: int


class ResponseReceiver:
    """HTTPS server on 127.0.0.1 standing in for CloudFormation's pre-signed response URL."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_file = str(directory / "cloudformation-response-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._lock = threading.Lock()
        self.answers: list[Answer] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    document = json.loads(body)
                except ValueError:
                    document = {"unreadable": body[:200].decode(errors="replace")}
                with receiver._lock:
                    receiver.answers.append(Answer(self.path, document, len(body)))
                self.send_response(200)
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

    def answers_for(self, request_id: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if f"/{request_id}?" in a.path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
