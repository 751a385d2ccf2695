"""OUTPUT_FORMAT=otlp through the Lambda handler into OTLP/HTTP intakes on 127.0.0.1.

Real ones first: Datadog's ``ddapm-test-agent`` (an OpenTelemetry receiver from PyPI) takes OTLP/HTTP
logs and gives them back from its session API; ``rotel`` (a small OpenTelemetry collector from PyPI)
takes them and exports them on to the test receiver. Each in both encodings (OTLP_PROTOCOL). Then the
test receiver alone, answering as the OTLP specification documents: partial success, 429/502/503/504
with Retry-After, 400 and 500 (not retryable in OTLP). Each
test checks, per line of the file, that it arrived exactly once in the intake's terms, that only what
failed was resent, and the counts of the summary line.
"""

from __future__ import annotations

import calendar
import contextlib
import importlib.util
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alb_log_factory import MALFORMED_LINE, iter_alb_lines, log_key
from aws_events import (
    ACCOUNT,
    LOG_GROUP,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
    sqs_event,
)
from ingest_server import IngestServer, Reply

from forwarder.parsers.alb import parse_alb_access
from forwarder.pipeline import RejectedRecordsError
from forwarder.records import record_event_id
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
AGENT = "ddapm-test-agent"


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    return summaries[-1]


def flat(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP attributes -> {key: the value as JSON holds it ("intValue" stays a string)}."""
    return {a["key"]: next(iter(a["value"].values())) for a in attributes}


# --- a real intake: ddapm-test-agent ---------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _agent_command() -> str | None:
    beside = Path(sys.executable).with_name(AGENT)
    return str(beside) if beside.exists() else shutil.which(AGENT)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ddapm-test-agent on 127.0.0.1; yields its OTLP/HTTP base URL."""
    command = _agent_command()
    if command is None:
        pytest.skip(f"{AGENT} is not installed (pip install -e '.[dev]' provides it)")
    apm, otlp_http, otlp_grpc = _free_ports(3)
    log = (tmp_path_factory.mktemp("agent") / "agent.log").open("wb")
    process = subprocess.Popen(
        [
            command,
            *("--host", "127.0.0.1", "--port", str(apm)),
            *("--otlp-http-port", str(otlp_http), "--otlp-grpc-port", str(otlp_grpc)),
            *("--log-level", "WARNING"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{otlp_http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/test/session/logs", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"{AGENT} did not start (exit code {process.poll()}); see {log.name}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def agent_payloads(base: str) -> list[dict[str, Any]]:
    """The requests the agent took, in OTLP's JSON mapping (it gives those it took as protobuf with the
    .proto's field names, resource_logs ..., which are put in the mapping's camelCase here)."""
    with urllib.request.urlopen(f"{base}/test/session/logs", timeout=5) as answer:
        payloads: list[dict[str, Any]] = json.load(answer)
    return [_camel_case(payload) for payload in payloads]


def _camel_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): _camel_case(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_case(item) for item in value]
    return value


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_every_line_arrives_once_in_a_real_otlp_receiver(  # noqa: PLR0917
    invoke: Any, put_log: Any, forwarder_env: Any, agent: str, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    urllib.request.urlopen(f"{agent}/test/session/clear", timeout=5).close()
    # The agent's web server takes bodies up to 1 MiB: 20 records stay far below.
    forwarder_env(
        HTTP_ENDPOINT=f"{agent}/v1/logs", OUTPUT_FORMAT="otlp", BATCH_MAX_RECORDS="20", OTLP_PROTOCOL=protocol
    )
    lines = [*iter_alb_lines(44), MALFORMED_LINE]
    obj = put_log(KEY, lines)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}

    payloads = agent_payloads(agent)
    assert len(payloads) == 3
    resource_logs = [r for payload in payloads for r in payload["resourceLogs"]]
    records = [(r["resource"], log) for r in resource_logs for s in r["scopeLogs"] for log in s["logRecords"]]
    # The agent lists requests newest first: order by line number.
    records.sort(key=lambda pair: int(flat(pair[1]["attributes"])["line_number"]))
    attributes = [flat(log["attributes"]) for _, log in records]
    assert [a["event_id"] for a in attributes] == ids_of(obj)  # every line exactly once

    resource = flat(records[0][0]["attributes"])
    parsed = parse_alb_access(lines[0])
    assert resource["cloud.provider"] == "aws"
    assert resource["cloud.resource_id"].endswith(f":loadbalancer/{parsed['elb']}")
    first = attributes[0]
    assert first["http.request.method"] == parsed["http_method"]
    assert first["url.full"] == parsed["request_url"]
    assert first["http.response.status_code"] == str(parsed["elb_status_code"])
    assert (first["client.address"], first["client.port"]) == (
        parsed["client_ip"],
        str(parsed["client_port"]),
    )
    assert first["aws.s3.key"] == obj.key and first["line_number"] == "1"
    # timeUnixNano is the line's own time, to the microsecond it gives.
    seconds = calendar.timegm(time.strptime(parsed["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert records[0][1]["timeUnixNano"] == f"{int(seconds)}{parsed['time'][20:26]}000"

    malformed = records[-1][1]
    assert malformed["body"] == {"stringValue": MALFORMED_LINE} and "timeUnixNano" not in malformed
    assert "parse_error" in attributes[-1]

    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["rejected"]) == (45, 3, 0)
    assert (summary["unparseable"], summary["outcome"]) == (1, "ok")


# --- a real collector: rotel, exporting to the test receiver ---------------------------------------------


def _rotel_agent() -> str | None:
    """The rotel collector's executable, which its PyPI package carries beside its Python module."""
    spec = importlib.util.find_spec("rotel")
    folders = list(spec.submodule_search_locations or []) if spec else []
    agent = Path(folders[0]) / "rotel-agent" if folders else None
    return str(agent) if agent and agent.exists() else None


@pytest.fixture
def collector(intake_server: Any, tmp_path: Path) -> Iterator[tuple[str, IngestServer]]:
    """rotel, a small OpenTelemetry collector from PyPI, on 127.0.0.1: it takes OTLP/HTTP logs in either
    encoding and exports them (OTLP/HTTP, protobuf, gzip) to the test receiver. Yields the URL the
    forwarder posts to and that receiver."""
    agent = _rotel_agent()
    if agent is None:
        pytest.skip("rotel is not installed (pip install -e '.[dev]' provides it)")
    downstream: IngestServer = intake_server("otlp")
    http_port, grpc_port = _free_ports(2)
    log = (tmp_path / "rotel.log").open("wb")
    process = subprocess.Popen(
        [
            agent,
            "start",
            *(
                "--otlp-http-endpoint",
                f"127.0.0.1:{http_port}",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{grpc_port}",
            ),
            *("--exporter", "otlp", "--otlp-exporter-protocol", "http"),
            *("--otlp-exporter-endpoint", downstream.url.removesuffix("/v1/logs")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", http_port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"rotel did not start (exit code {process.poll()}); see {log.name}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{http_port}/v1/logs", downstream
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_every_line_arrives_once_through_a_real_collector(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    collector: tuple[str, IngestServer],
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    url, downstream = collector
    forwarder_env(HTTP_ENDPOINT=url, OUTPUT_FORMAT="otlp", OTLP_PROTOCOL=protocol, BATCH_MAX_RECORDS="20")
    lines = [*iter_alb_lines(44), MALFORMED_LINE]
    obj = put_log(KEY, lines)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["outcome"]) == (45, 3, "ok")

    deadline = time.monotonic() + 20  # the collector batches what it exports
    while len(downstream.records()) < len(lines) and time.monotonic() < deadline:
        time.sleep(0.1)
    records = sorted(downstream.records(), key=lambda record: record["line_number"])
    assert [r["event_id"] for r in records] == ids_of(obj)  # every line once, as the collector read it
    parsed = parse_alb_access(lines[0])
    first = records[0]
    assert first["_resource"]["cloud.resource_id"].endswith(f":loadbalancer/{parsed['elb']}")
    assert (first["http.request.method"], first["url.full"]) == (parsed["http_method"], parsed["request_url"])
    assert first["http.response.status_code"] == parsed["elb_status_code"]
    assert first["_time"] == str(_nanoseconds(parsed["time"]))
    assert records[-1]["_body"] == MALFORMED_LINE


def _nanoseconds(when: str) -> int:
    seconds = calendar.timegm(time.strptime(when[:19], "%Y-%m-%dT%H:%M:%S"))
    return int(f"{seconds}{when[20:26]}000")


# --- the test receiver: OTLP's documented answers ---------------------------------------------------------


CONTENT_TYPES = {"http/json": "application/json", "http/protobuf": "application/x-protobuf"}


@pytest.fixture(params=list(CONTENT_TYPES))
def otlp(intake_server: Any, request: pytest.FixtureRequest) -> Iterator[IngestServer]:
    """The test receiver, taking each OTLP_PROTOCOL in turn; every request checked to carry its encoding."""
    server: IngestServer = intake_server(
        "otlp", env={"BATCH_MAX_RECORDS": "20", "OTLP_PROTOCOL": request.param}
    )
    yield server
    assert {r.headers["Content-Type"] for r in server.requests} <= {CONTENT_TYPES[request.param]}


def sent(server: IngestServer) -> list[list[str]]:
    return [[r["event_id"] for r in request.logs] for request in server.requests]


def test_partial_success_counts_rejections_resends_nothing_and_fails_the_object_after_the_rest(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    otlp: IngestServer,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    obj = put_log(KEY, count=50)
    ids = ids_of(obj)
    otlp.reject_records([ids[21], ids[24], ids[45]])
    with caplog.at_level(logging.INFO), pytest.raises(RejectedRecordsError) as caught:
        invoke(sns_event(s3_notification(obj)))

    assert sent(otlp) == [ids[:20], ids[20:40], ids[40:]]  # nothing resent
    assert sleeps == []
    assert otlp.event_ids() == [i for i in ids if i not in {ids[21], ids[24], ids[45]}]
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["rejected"], summary["batches"]) == (47, 3, 3)
    assert (summary["outcome"], summary["retries"]) == ("failed", 0)
    reason = "log records rejected (partial success): log record too old to ingest"
    assert summary["first_rejections"] == [f"lines 21-40: 2 {reason}", f"lines 41-50: 1 {reason}"]
    assert "rejected 3 of the 50 records" in str(caught.value)
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (emf["RejectedRecords"], emf["ObjectsFailed"]) == (3, 1)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_resend_the_request_after_retry_after(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    otlp: IngestServer,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    obj = put_log(KEY, count=30)
    ids = ids_of(obj)
    otlp.script(Reply(200, body=b"{}"), Reply(status, headers={"Retry-After": "7"}, body=b'{"code":14}'))
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [r.status for r in otlp.requests] == [200, status, 200]
    assert sent(otlp) == [ids[:20], ids[20:], ids[20:]]  # only the refused request, whole (OTLP: no items)
    assert sleeps == [7.0]
    assert otlp.event_ids() == ids
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["retries"], summary["rejected"]) == (30, 1, 0)


@pytest.mark.parametrize("status", [400, 500])
def test_other_statuses_are_permanent(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    otlp: IngestServer,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    otlp.script(Reply(status, body=b'{"code":3,"message":"invalid log record"}'))
    obj = put_log(KEY, count=5)
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(PermanentDeliveryError, match=f"HTTP {status}.*invalid"),
    ):
        invoke(sns_event(s3_notification(obj)))
    assert len(otlp.requests) == 1 and sleeps == []  # 500 too: OTLP retries only 429, 502, 503, 504
    assert otlp.event_ids() == []
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["retries"], summary["outcome"]) == (0, 0, "failed")


def test_cloudwatch_logs_events_arrive_once_with_their_log_group_as_resource(
    invoke: Any, otlp: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    events = log_events(
        "START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST\n",
        '{"timestamp":"2024-03-14T09:30:02.413Z","level":"ERROR","message":"card declined"}\n',
        "a line of no known format\n",
    )
    with caplog.at_level(logging.INFO, logger="forwarder.summary"):
        assert invoke(cloudwatch_logs_event(cloudwatch_logs_data(events))) is None
    records = otlp.records()
    assert [r["log_event_id"] for r in records] == [e["id"] for e in events]  # each once, in order
    assert all(r["_resource"]["aws.log.group.names"] == [LOG_GROUP] for r in records)
    assert all(r["_resource"]["cloud.account.id"] == ACCOUNT for r in records)
    assert records[1]["_severity"] == "ERROR" and records[2]["_body"] == "a line of no known format"
    assert records[2]["_time"] == f"{events[2]['timestamp']}000000"  # dated by its log event
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["rejected"], summary["outcome"]) == (3, 0, "ok")
