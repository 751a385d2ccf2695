"""splunk_hec: the envelope, HEC's answers read by code, the ack URL and settings; shared entry fitting."""

from __future__ import annotations

import json
from array import array

import pytest

from forwarder import jsonutil
from forwarder.auth import auth_headers, secret_forms
from forwarder.config import Config, ConfigError
from forwarder.destinations import Framing, fit_entry, line_time_ns
from forwarder.destinations.splunk_hec import SplunkHec, ack_url
from forwarder.sender import Batch, HttpResponse

ENDPOINT = "https://splunk.example.com:8088/services/collector/event"


def hec(**settings: object) -> SplunkHec:
    return SplunkHec(Config(endpoint=ENDPOINT, output_format="splunk_hec", **settings))  # type: ignore[arg-type]


def batch(records: int) -> Batch:
    return Batch(bytearray(b"x" * records), Framing(), array("Q", range(records)))


def answer(status: int, body: dict[str, object]) -> HttpResponse:
    return HttpResponse(status, None, json.dumps(body).encode())


def test_time_is_read_from_the_line_to_the_nanosecond() -> None:
    assert line_time_ns("2025-03-14T09:30:00.123456Z") == 1741944600_123456000
    assert line_time_ns("2025-03-14T09:30:00") == 1741944600_000000000
    for bad in (None, 12, "", "2025-02-30T00:00:00Z", "yesterday", "2025-03-14T24:00:00Z"):
        assert line_time_ns(bad) is None


def test_the_envelope_carries_time_host_source_sourcetype_index_and_the_record() -> None:
    record = {"time": "2025-03-14T09:30:00.5Z", "elb": "app/web/1", "s3_bucket": "b", "s3_key": "k.gz"}
    envelope = json.loads(hec(splunk_index="alb").encode(dict(record)))
    assert envelope == {
        "time": 1741944600.5,
        "host": "app/web/1",
        "source": "s3://b/k.gz",
        "sourcetype": "aws:elb:accesslogs",
        "index": "alb",
        "event": record,
    }
    unparsed = json.loads(hec().encode({"raw": "?", "s3_bucket": "b", "s3_key": "k"}))
    assert set(unparsed) == {"source", "sourcetype", "event"}  # HEC's receive time and default host


def test_hec_codes_decide() -> None:
    destination = hec()
    assert destination.read_response(answer(200, {"text": "Success", "code": 0}), batch(3)).delivered
    busy = destination.read_response(answer(503, {"text": "Server is busy", "code": 9}), batch(3))
    assert busy.retry == (0, 1, 2) and "Server is busy (code 9, HTTP 503)" in busy.failure
    invalid = destination.read_response(
        answer(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}), batch(3)
    )
    assert invalid.refused and invalid.failure.endswith(
        "Invalid data format (code 6, HTTP 400) (event 2 of the batch)"
    )
    assert destination.read_response(answer(403, {"text": "Invalid token", "code": 4}), batch(3)).refused


def test_with_acks_a_200_asks_for_its_ack_until_hec_says_true() -> None:
    destination = hec(splunk_ack=True)
    ((name, channel),) = destination.extra_headers
    assert name == "X-Splunk-Request-Channel" and len(channel) == 36
    verdict = destination.read_response(answer(200, {"text": "Success", "code": 0, "ackId": 7}), batch(2))
    assert not verdict.delivered and verdict.confirm is not None
    confirm = verdict.confirm
    assert (confirm.url, confirm.body, confirm.wait) == (
        ENDPOINT[: -len("event")] + "ack",
        b'{"acks":[7]}',
        1.0,
    )
    later = confirm.read(answer(200, {"acks": {"7": False}}), batch(2))
    assert later.confirm is not None and later.confirm.wait == 2.0
    busy = confirm.read(HttpResponse(503, None, b""), batch(2))
    assert busy.confirm is not None  # the events were taken: ask again, never resend for that
    assert confirm.read(answer(200, {"acks": {"7": True}}), batch(2)).delivered
    disabled = confirm.read(answer(400, {"text": "ACK is disabled", "code": 14}), batch(2))
    assert disabled.refused and "ACK is disabled (code 14" in disabled.failure
    no_id = destination.read_response(answer(200, {"text": "Success", "code": 0}), batch(2))
    assert no_id.refused and "SPLUNK_ACK=true" in no_id.failure


def test_ack_url_sits_next_to_the_event_url() -> None:
    assert (
        ack_url("https://h:8088/services/collector/event?channel=x")
        == "https://h:8088/services/collector/ack?channel=x"
    )
    assert ack_url("https://h/services/collector") == "https://h/services/collector/ack"
    assert ack_url("https://h/services/collector/event/1.0") == "https://h/services/collector/ack"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"HTTP_ENDPOINT": "https://h:8088/services/collector/raw"}, "must be HEC's event URL"),
        ({"SPLUNK_INDEX": "_internal"}, "SPLUNK_INDEX must be a Splunk index name"),
        ({"SPLUNK_INDEX": "Main"}, "SPLUNK_INDEX must be a Splunk index name"),
        ({"SPLUNK_ACK": "yes"}, "SPLUNK_ACK must be true or false"),
        ({"SPLUNK_SOURCETYPE": "a\tb"}, "SPLUNK_SOURCETYPE must not contain control characters"),
    ],
)
def test_bad_splunk_settings_are_refused_by_name(settings: dict[str, str], problem: str) -> None:
    env = {"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "splunk_hec", **settings}
    with pytest.raises(ConfigError, match=problem):
        Config.from_env(env)


def test_splunk_defaults_and_its_batch_limits_stay_overridable() -> None:
    config = Config.from_env(
        {"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "splunk_hec", "BATCH_MAX_BYTES": ""}
    )
    assert (config.splunk_ack, config.splunk_sourcetype, config.splunk_index) == (
        False,
        "aws:elb:accesslogs",
        None,
    )
    assert (config.batch_max_records, config.batch_max_bytes) == (5000, 1_000_000)
    bigger = Config.from_env(
        {"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "splunk_hec", "BATCH_MAX_BYTES": "8000000"}
    )
    assert bigger.batch_max_bytes == 8_000_000


def test_splunk_auth_header_and_its_secret_forms() -> None:
    config = Config(endpoint=ENDPOINT, auth_type="splunk")
    assert auth_headers(config, "tok-123") == {"Authorization": "Splunk tok-123"}
    assert "tok-123" in secret_forms(config, "tok-123")


def test_an_entry_too_large_is_cut_to_the_limit_keeping_its_provenance() -> None:
    record = {
        "raw": 'é"' * 5000,
        "log_type": "alb_access",
        "line_number": 9,
        "event_id": "e" * 32,
        "time": "t",
    }
    data = fit_entry(record, jsonutil.dumps, 2000)
    assert len(data) <= 2000
    cut = json.loads(data)
    assert (cut["truncated"], cut["line_number"], cut["event_id"], cut["time"]) == (True, 9, "e" * 32, "t")
    assert cut["raw"].startswith('{"raw":"é')
    small = {"a": 1}
    assert fit_entry(small, jsonutil.dumps, 2000) == jsonutil.dumps(small)
