"""The destination seam: registry, framing, batches cut by offset, and the json envelope's verdicts."""

from __future__ import annotations

import gzip
import json
import math
import random
from typing import Any

import pytest

from forwarder.auth import CachedCredential, PlainCredential
from forwarder.config import Config
from forwarder.destinations import (
    OUTPUT_FORMATS,
    Rejection,
    Verdict,
    destination_for,
    fit_entry,
    limits_for,
    line_time_ns,
)
from forwarder.destinations.envelope import JsonEnvelope
from forwarder.parsers.json_message import parse_json_object
from forwarder.sender import Batch, HttpResponse, Sender, TransientDeliveryError, iter_batches

ENDPOINT = "https://logs.example.com/in"
JSON = JsonEnvelope.framing


def records(count: int) -> list[dict[str, object]]:
    return [{"n": i, "text": "é" * (i % 3)} for i in range(count)]


def test_every_registered_format_loads() -> None:
    for name in OUTPUT_FORMATS:
        config = Config(endpoint=ENDPOINT, output_format=name, es_index="alb-logs")
        assert destination_for(config).name == name


def test_json_body_is_the_logs_envelope_byte_for_byte() -> None:
    destination = destination_for(Config(endpoint=ENDPOINT))
    items = [destination.encode(r) for r in records(3)]
    batch = next(iter_batches(items, framing=destination.framing, max_records=10, max_bytes=10**6))
    assert batch.body() == b'{"logs":[' + b",".join(items) + b"]}"
    assert json.loads(batch.body()) == {"logs": records(3)}
    assert destination.content_type == "application/json"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_json_counts_any_2xx_as_delivered(status: int) -> None:
    destination = destination_for(Config(endpoint=ENDPOINT))
    batch = next(iter_batches([b"{}"], framing=destination.framing, max_records=1, max_bytes=100))
    assert destination.read_response(HttpResponse(status, None, b"not even json"), batch) == Verdict()


def test_json_retries_the_whole_batch_on_retryable_statuses_and_refuses_others() -> None:
    destination = destination_for(Config(endpoint=ENDPOINT))
    items = [destination.encode(r) for r in records(3)]
    batch = next(iter_batches(items, framing=destination.framing, max_records=10, max_bytes=10**6))
    verdict = destination.read_response(HttpResponse(503, None, b""), batch)
    assert (verdict.retry, verdict.failure) == ((0, 1, 2), "HTTP 503 Service Unavailable")
    assert destination.read_response(HttpResponse(400, None, b""), batch).refused


def test_subset_is_cut_from_the_buffer_and_remembers_positions() -> None:
    destination = destination_for(Config(endpoint=ENDPOINT))
    items = [destination.encode(r) for r in records(6)]
    batch = next(iter_batches(items, framing=destination.framing, max_records=10, max_bytes=10**6))
    part = batch.subset([1, 4, 5])
    assert json.loads(part.body()) == {"logs": [records(6)[i] for i in (1, 4, 5)]}
    again = part.subset([2])
    assert json.loads(again.body()) == {"logs": [records(6)[5]]}
    assert (part.original_position(1), again.original_position(0)) == (4, 5)
    assert gzip.decompress(again.compress(1)) == again.body()


def test_ndjson_body_is_one_record_per_line() -> None:
    destination = destination_for(Config(endpoint=ENDPOINT, output_format="ndjson"))
    batch = next(
        iter_batches(
            [destination.encode(r) for r in records(4)],
            framing=destination.framing,
            max_records=10,
            max_bytes=10**6,
        )
    )
    assert [json.loads(line) for line in batch.body().splitlines()] == records(4)
    assert batch.body().endswith(b"\n")
    assert [json.loads(line) for line in batch.subset([3, 0]).body().splitlines()] == [
        records(4)[3],
        records(4)[0],
    ]
    assert destination.content_type == "application/x-ndjson"


class ScriptedDestination:
    """The json body, with verdicts given in advance."""

    name = "scripted"
    content_type = "application/json"
    framing = JsonEnvelope.framing
    extra_headers = ()
    accepts = "anything"
    encode = staticmethod(JsonEnvelope.encode)

    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts = list(verdicts)

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        return self.verdicts.pop(0)


class RecordingTransport:
    def __init__(self) -> None:
        self.bodies: list[list[object]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResponse:
        self.bodies.append([r["n"] for r in json.loads(gzip.decompress(body))["logs"]])
        return HttpResponse(200, None, b"")


def test_sender_resends_only_the_items_a_verdict_names_and_keeps_original_positions() -> None:
    transport = RecordingTransport()
    sleeps: list[float] = []
    sender = Sender(
        Config(endpoint=ENDPOINT), None, transport=transport, sleep=sleeps.append, rng=lambda: 0.5
    )
    sender.destination = ScriptedDestination(
        Verdict(retry=(1, 3), failure="throttled", rejected=1, rejections=(Rejection(2, "mapping"),)),
        Verdict(
            retry=(1,), failure="throttled", duplicates=1, rejected=1, rejections=(Rejection(None, "some"),)
        ),
        Verdict(),
    )
    batch = next(
        iter_batches([b'{"n":%d}' % n for n in range(5)], framing=JSON, max_records=5, max_bytes=10**6)
    )
    result = sender.send(batch)
    assert transport.bodies == [[0, 1, 2, 3, 4], [1, 3], [3]]
    assert (result.retries, result.duplicates, result.rejected) == (2, 1, 2)
    assert result.rejections == (Rejection(2, "mapping"), Rejection(None, "some"))
    assert sleeps == [0.25, 0.5]  # backoff before each resend


def test_reasons_read_from_an_answer_are_masked_for_the_credential() -> None:
    token = "tok-ABCDEF-123456"
    config = Config(endpoint=ENDPOINT, auth_type="bearer", auth_credentials=token, max_retries=1)
    credential = CachedCredential(PlainCredential(token, "bearer"), 300)
    sender = Sender(config, credential, transport=RecordingTransport(), sleep=lambda _: None)
    sender.destination = ScriptedDestination(
        Verdict(
            retry=(0,), failure=f"item says {token}", rejected=1, rejections=(Rejection(1, f"bad {token}"),)
        ),
        Verdict(retry=(0,), failure=f"item says {token}"),
    )
    batch = next(iter_batches([b'{"n":0}', b'{"n":1}'], framing=JSON, max_records=5, max_bytes=10**6))
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send(batch)
    assert token[:6] not in str(caught.value) and "[REDACTED]" in str(caught.value)
    sender.destination = ScriptedDestination(Verdict(rejected=1, rejections=(Rejection(0, f"bad {token}"),)))
    assert sender.send(batch).rejections == (Rejection(0, "bad [REDACTED]"),)


def test_a_verdict_may_say_how_long_to_wait_before_the_retry() -> None:
    sleeps: list[float] = []
    sender = Sender(Config(endpoint=ENDPOINT), None, transport=RecordingTransport(), sleep=sleeps.append)
    sender.destination = ScriptedDestination(Verdict(retry=(0,), failure="busy", after=7.0), Verdict())
    sender.send(next(iter_batches([b'{"n":0}'], framing=JSON, max_records=5, max_bytes=100)))
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("when", "nanoseconds"),
    [
        ("2025-03-14T09:30:00.123456Z", 1741944600123456000),
        ("2025-03-14T09:30:00.123456", 1741944600123456000),
        ("2025-03-14T09:30:00.5Z", 1741944600500000000),
        ("2025-03-14T09:30:00.123456789Z", 1741944600123456789),
        ("2018-12-20T02:59:40", 1545274780000000000),  # NLB: no fraction, no Z
        ("2024-02-29T23:59:59Z", 1709251199000000000),
        ("2025-03-14T09:30:00.1234567890Z", None),  # ten digits
        ("2025-03-14T09:30:00.Z", None),
        ("2025-03-14T09:30:00.12a4Z", None),
        ("2025-03-14T09:30:00ZZ", None),
        ("2025-03-14T09:30:00+01:00", None),
        ("2025-02-30T09:30:00Z", None),
        ("2025-03-14 09:30:00Z", None),
        ("2025-03-14T09:30", None),
        ("", None),
        (None, None),
        (1741944600, None),
    ],
)
def test_line_times_read_as_nanoseconds(when: object, nanoseconds: int | None) -> None:
    assert line_time_ns(when) == nanoseconds
    assert line_time_ns(when) == nanoseconds  # the second reading comes from the cache


def test_a_cached_second_does_not_make_a_bad_fraction_good() -> None:
    assert line_time_ns("2025-03-14T09:30:00.1Z") == 1741944600100000000
    assert line_time_ns("2025-03-14T09:30:00.1ZZ") is None
    assert line_time_ns("2025-03-14T09:30:00,1Z") is None
    # ALB's own shape (six digits and a Z) is read on a shorter path: it holds to the same rules.
    assert line_time_ns("2025-03-14T09:30:00.123456Z") == 1741944600123456000
    assert line_time_ns("2025-03-14T09:30:00.12345aZ") is None
    assert line_time_ns("2025-03-14T09:30:00.+12345Z") is None
    assert line_time_ns("2025-03-14T09:30:00,123456Z") is None
    assert line_time_ns("2025-03-14T09:30:00.123456z") is None


# --- any JSON a log line may hold, in every format -----------------------------------------------------

_AWKWARD_TEXT = ['"', "\\", "\x00", "\x1f", "\x7f", "é", "\u2028", "\N{GRINNING FACE}", "%s", "{", ",", ":"]
_AWKWARD_TEXT += ["\\u0000", "\n", "[", "]", "a", " ", '","']
_AWKWARD_NUMBERS = [0, -1, 2**63 - 1, -(2**63), 2**63, 2**70, -0.0, 1e-7, 1e300, 0.1, True, False, None]
_INTAKE_URLS = {
    "elasticsearch": "https://search.example.com/_bulk",
    "splunk_hec": "https://hec.example.com/services/collector/event",
    "loki": "https://loki.example.com/loki/api/v1/push",
    "datadog": "https://http-intake.logs.datadoghq.com/api/v2/logs",
    "otlp": "https://collector.example.com:4318/v1/logs",
}


def _awkward(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(5 if depth < 2 else 3)
    if kind == 0:
        return "".join(rng.choice(_AWKWARD_TEXT) for _ in range(rng.randrange(6)))
    if kind == 1:
        return rng.choice(_AWKWARD_NUMBERS)
    if kind == 2:
        return rng.choice(["", "x", "2025-03-14T09:30:00.123456Z", "garbage"])
    if kind == 3:
        return [_awkward(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_awkward_key(rng): _awkward(rng, depth + 1) for _ in range(rng.randrange(4))}


def _awkward_key(rng: random.Random) -> str:
    return rng.choice(["elb", "time", "level", "status", "service", "@timestamp", "event", "host"]) + "".join(
        rng.choice(_AWKWARD_TEXT) for _ in range(rng.randrange(3))
    )


def _strict_json(data: bytes) -> Any:
    """JSON as intakes read it: UTF-8 only, no NaN or Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def _entries(body: bytes, output_format: str) -> int:
    """How many records the body holds, read as the format's intake reads it (raising if it cannot)."""
    if output_format == "otlp-protobuf":
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
        return sum(len(scope.log_records) for logs in request.resource_logs for scope in logs.scope_logs)
    if output_format in ("ndjson", "elasticsearch"):
        lines = [_strict_json(line) for line in body.split(b"\n") if line]
        return len(lines) // (2 if output_format == "elasticsearch" else 1)
    if output_format == "splunk_hec":
        return len([_strict_json(line) for line in body.split(b"\n")])
    document = _strict_json(body)
    if output_format == "loki":
        values = [value for stream in document["streams"] for value in stream["values"]]
        assert all(
            text and isinstance(text, str) for s in document["streams"] for text in s["stream"].values()
        )
        assert all(time.isdigit() and isinstance(_strict_json(line.encode()), dict) for time, line in values)
        return len(values)
    if output_format == "otlp":
        return sum(
            len(scope["logRecords"]) for logs in document["resourceLogs"] for scope in logs["scopeLogs"]
        )
    return len(document["logs"] if output_format == "json" else document)


@pytest.mark.parametrize("output_format", [*OUTPUT_FORMATS, "otlp-protobuf"])
def test_every_format_writes_a_body_its_intake_parses_whatever_a_json_line_holds(output_format: str) -> None:
    """Messages of any shape, read as the JSON parser reads them (quotes, control characters, NUL, a
    lone surrogate escaped, "," as a list element, integers beyond 64 bits, NaN, their own elb, time or
    level holding anything): each format's body holds every record and is what its intake parses."""
    if output_format == "otlp-protobuf":
        pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    name = output_format.partition("-")[0]
    config = Config(
        endpoint=_INTAKE_URLS.get(name, ENDPOINT),
        output_format=name,
        otlp_protocol="http/protobuf" if output_format == "otlp-protobuf" else "http/json",
        es_index="alb-%Y.%m.%d",
    )
    destination = destination_for(config)
    limit = limits_for(name).max_entry_bytes
    rng = random.Random(20261203)  # noqa: S311 -- test data
    for attempt in range(150):
        items = []
        for number in range(1, rng.randrange(2, 6)):
            fields = {_awkward_key(rng): _awkward(rng) for _ in range(rng.randrange(6))}
            fields["nan"] = math.nan if rng.randrange(2) else math.inf
            line = json.dumps(fields).replace('"a"', '"\\udcff"')  # and a lone surrogate, escaped
            record = parse_json_object(line)
            record.update(log_type="json", event_id=f"{attempt}-{number}", line_number=number)
            items.append(record)
        encoded = [
            destination.encode(item) if limit is None else fit_entry(item, destination.encode, limit)
            for item in items
        ]
        (batch,) = iter_batches(encoded, framing=destination.framing, max_records=100, max_bytes=1 << 30)
        assert _entries(batch.body(), output_format) == len(items), items
