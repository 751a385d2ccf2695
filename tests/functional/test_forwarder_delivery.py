"""Delivery against a real loopback receiver: batching, retries, timeouts, deadline, test mode, TLS."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alb_log_factory import log_key, make_alb_lines
from aws_events import ShrinkingContext, s3_notification, sns_event
from botocore.exceptions import ResponseStreamingError
from ingest_server import Hang, Hold, IngestServer, Reply

from forwarder import handler
from forwarder.config import Config
from forwarder.pipeline import DELIVERY_SWITCH_INTERVAL, forward_object
from forwarder.records import record_event_id
from forwarder.sender import DeadlineError, PermanentDeliveryError, Sender, TransientDeliveryError
from forwarder.source import ObjectReadError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


def expected_ids(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def test_test_mode_parses_and_sends_nothing(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(HTTP_TEST_MODE="true")
    obj = put_log(KEY, count=30)
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    assert ingest.requests == []
    would_send = [r for r in caplog.records if r.getMessage().startswith("test mode: would POST 30 records")]
    assert len(would_send) == 1
    assert json.loads(would_send[0].sample_record)["line_number"] == 1
    summary = next(r for r in caplog.records if r.name == "forwarder.summary").summary
    assert summary["outcome"] == "test_mode"
    assert summary["lines"] == 30
    assert summary["records_sent"] == 0


def test_429_with_retry_after_then_success(
    invoke: Any, put_log: Any, ingest: IngestServer, sleeps: list[float]
) -> None:
    ingest.script(Reply(429, headers={"Retry-After": "7"}, body=b'{"error":"slow down"}'))
    obj = put_log(KEY, count=20)
    invoke(sns_event(s3_notification(obj)))
    assert sleeps == [7.0]
    assert [r.status for r in ingest.requests] == [429, 200]
    assert ingest.event_ids() == expected_ids(obj)


def test_500s_then_success_delivers_each_line_once(
    invoke: Any, put_log: Any, ingest: IngestServer, sleeps: list[float]
) -> None:
    ingest.script(Reply(500), Reply(502), Reply(503))
    obj = put_log(KEY, count=20)
    invoke(sns_event(s3_notification(obj)))
    assert [r.status for r in ingest.requests] == [500, 502, 503, 200]
    assert len(sleeps) == 3
    # Exponential backoff with full jitter: each wait is below its doubling cap.
    for number, wait in enumerate(sleeps):
        assert 0 <= wait < 0.5 * 2**number
    assert ingest.event_ids() == expected_ids(obj)


def test_500_forever_fails_the_invocation(  # noqa: PLR0917 -- pytest fixtures
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    ingest: IngestServer,
    sleeps: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    forwarder_env(HTTP_MAX_RETRIES="2")
    ingest.set_default(Reply(500, body=b"internal error"))
    obj = put_log(KEY, count=5)
    with pytest.raises(TransientDeliveryError) as caught:
        invoke(sns_event(s3_notification(obj)))
    assert len(ingest.requests) == 3
    assert len(sleeps) == 2
    message = str(caught.value)
    assert f"http://127.0.0.1:{ingest.port}/ingest: HTTP 500 Internal Server Error" in message
    assert "gave up after 2 retries" in message
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert emf["ObjectsFailed"] == 1
    assert emf["DeliveryFailures"] == 1
    assert emf["DeliveryRetries"] == 2
    assert emf["RecordsSent"] == 0


def test_hanging_endpoint_times_out_and_retries(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(HTTP_TIMEOUT_SECONDS="0.3")
    ingest.script(Hang(10))
    obj = put_log(KEY, count=8)
    started = time.monotonic()
    invoke(sns_event(s3_notification(obj)))
    assert time.monotonic() - started < 3
    assert [r.status for r in ingest.requests] == [0, 200]  # 0: no answer was given
    assert ingest.event_ids() == expected_ids(obj)


def test_endpoint_that_always_hangs_is_bounded(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(HTTP_TIMEOUT_SECONDS="0.2", HTTP_MAX_RETRIES="2")
    ingest.set_default(Hang(10))
    obj = put_log(KEY, count=3)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match="timed out waiting for the response"):
        invoke(sns_event(s3_notification(obj)))
    assert time.monotonic() - started < 3
    assert len(ingest.requests) == 3


def test_refused_connection_is_reported_as_such(invoke: Any, put_log: Any, forwarder_env: Any) -> None:
    with IngestServer() as gone:
        url = gone.url
    forwarder_env(HTTP_ENDPOINT=url, HTTP_MAX_RETRIES="0")
    with pytest.raises(TransientDeliveryError, match="could not connect") as caught:
        invoke(sns_event(s3_notification(put_log(KEY, count=2))))
    assert "timed out" not in str(caught.value)


def test_multi_megabyte_object_split_into_batches_each_line_once(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    limit = 512 * 1024
    forwarder_env(BATCH_MAX_BYTES=str(limit), BATCH_MAX_RECORDS="5000")
    obj = put_log(KEY, count=6000, members=3)
    uncompressed = sum(len(line) + 1 for line in obj.lines)
    assert uncompressed > 2 * 1024 * 1024
    invoke(sns_event(s3_notification(obj)))
    requests = ingest.accepted()
    assert len(requests) >= 5
    for request in requests:
        assert len(gzip.decompress(request.raw_body)) <= limit
    ids = ingest.event_ids()
    assert len(ids) == 6000
    assert ids == expected_ids(obj)
    assert [r["line_number"] for r in ingest.records()] == list(range(1, 6001))


def test_record_limit_closes_batches(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="40")
    obj = put_log(KEY, count=100)
    invoke(sns_event(s3_notification(obj)))
    assert [len(r.logs) for r in ingest.accepted()] == [40, 40, 20]


def test_redelivery_gives_the_same_event_ids(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=25)
    event = sns_event(s3_notification(obj))
    invoke(event)
    invoke(event)
    ids = ingest.event_ids()
    assert ids[:25] == ids[25:] == expected_ids(obj)
    assert len(set(ids)) == 25


def test_deadline_before_sending_fails_cleanly(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=10)
    # HTTP_TIMEOUT_SECONDS=2 plus the 5 s margin do not fit in 3 s.
    with pytest.raises(DeadlineError, match="stopped before sending lines 1-10"):
        invoke(sns_event(s3_notification(obj)), remaining_ms=3000)
    assert ingest.requests == []


def test_deadline_mid_object_then_retry_resends_with_same_ids(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="30")
    obj = put_log(KEY, count=70)
    event = sns_event(s3_notification(obj))
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(DeadlineError, match="stopped before sending lines 31-60"),
    ):
        # Asked before the first batch and by the sender for its attempt: plenty; before the second: 1 s.
        handler.handler(event, ShrinkingContext([300_000, 300_000, 1_000]))
    assert len(ingest.event_ids()) == 30
    summary = next(r for r in caplog.records if r.name == "forwarder.summary").summary
    assert (summary["outcome"], summary["error_type"]) == ("failed", "DeadlineError")
    assert (summary["records_sent"], summary["batches"]) == (30, 1)
    # The third batch was read and encoded while the second was on its way: every line was read.
    assert summary["lines"] == 70
    # Lambda's retry: the whole object again, with the same ids; the receiver can drop the duplicates.
    invoke(event)
    ids = ingest.event_ids()
    assert len(ids) == 100
    assert sorted(set(ids)) == sorted(expected_ids(obj))


def test_https_endpoint_verified_against_trusted_ca(
    invoke: Any, put_log: Any, forwarder_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    obj = put_log(KEY, count=4)
    with IngestServer(ssl_context=server_context) as tls_server:
        forwarder_env(HTTP_ENDPOINT=tls_server.url, HTTP_ALLOW_INSECURE="false", HTTP_MAX_RETRIES="0")
        # Not trusted yet: the TLS handshake fails and nothing is delivered.
        with pytest.raises(TransientDeliveryError, match="TLS error"):
            invoke(sns_event(s3_notification(obj)))
        assert tls_server.requests == []
        # The system trust store now includes the test CA (OpenSSL reads SSL_CERT_FILE).
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        handler.reset(sleep=lambda _: None)
        invoke(sns_event(s3_notification(obj)))
        assert tls_server.event_ids() == expected_ids(obj)


def test_redirect_is_not_followed_so_the_credential_stays_put(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(HTTP_AUTH_TYPE="apikey", HTTP_AUTH_CREDENTIALS="k-abc-123")
    with IngestServer() as elsewhere:
        ingest.set_default(Reply(307, headers={"Location": elsewhere.url}))
        with pytest.raises(
            PermanentDeliveryError, match=r"HTTP 307 Temporary Redirect.*redirects are not followed"
        ):
            invoke(sns_event(s3_notification(put_log(KEY, count=2))))
        assert elsewhere.requests == []
    assert len(ingest.requests) == 1


def test_the_next_batch_is_built_while_the_intake_answers_and_sent_only_after_it(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10")
    obj = put_log(KEY, count=30)
    batch_two_built = threading.Event()
    # The first answer waits until lines 11-20 have been read and encoded into the next batch; for 1.5 s
    # at most, less than the forwarder's HTTP_TIMEOUT_SECONDS (2), so the attempt does not time out.
    ingest.script(Hold(release=batch_two_built, seconds=1.5))

    def watch(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield record
            if record["line_number"] == 20:
                batch_two_built.set()

    sender = Sender(Config.from_env(os.environ), None)
    stats = forward_object(s3, obj.bucket, obj.key, sender=sender, enrich=watch)

    assert ingest.holds == [True]  # released by the second batch being ready, not by the time running out
    assert ingest.event_ids() == expected_ids(obj)
    requests = ingest.requests
    assert [r.logs[0]["line_number"] for r in requests] == [1, 11, 21]
    for before, after in itertools.pairwise(requests):  # one request at a time, in line order
        assert after.received_at >= before.answered_at > 0
    assert (stats.lines, stats.records_sent, stats.batches) == (30, 30, 3)


def test_small_batches_queue_while_the_intake_answers_and_still_go_out_one_at_a_time(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    # Batches of 10 records are far below QUEUED_BYTES: while the intake holds its first answer, the
    # next four are built and queued (lines up to 50 read), not only the next one.
    forwarder_env(BATCH_MAX_RECORDS="10")
    obj = put_log(KEY, count=60)
    fifth_batch_built = threading.Event()
    ingest.script(Hold(release=fifth_batch_built, seconds=1.5))

    def watch(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield record
            if record["line_number"] == 50:
                fifth_batch_built.set()

    sender = Sender(Config.from_env(os.environ), None)
    stats = forward_object(s3, obj.bucket, obj.key, sender=sender, enrich=watch)

    assert ingest.holds == [True]
    assert ingest.event_ids() == expected_ids(obj)
    requests = ingest.requests
    assert [r.logs[0]["line_number"] for r in requests] == [1, 11, 21, 31, 41, 51]
    for before, after in itertools.pairwise(requests):
        assert after.received_at >= before.answered_at > 0
    assert (stats.lines, stats.records_sent, stats.batches) == (60, 60, 6)


def test_after_a_refused_batch_the_queued_ones_are_not_sent(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10")
    obj = put_log(KEY, count=60)
    refused = threading.Event()
    # The second batch is refused only once every later batch has been built and queued behind it.
    ingest.script(
        Reply(), Hold(release=refused, reply=Reply(400, body=b'{"error":"bad batch"}'), seconds=1.5)
    )

    def watch(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield record
            if record["line_number"] == 50:
                refused.set()

    sender = Sender(Config.from_env(os.environ), None)
    reported: list[Any] = []
    with pytest.raises(PermanentDeliveryError, match="400"):
        forward_object(s3, obj.bucket, obj.key, sender=sender, enrich=watch, report=reported.append)
    assert ingest.holds == [True]
    assert [r.status for r in ingest.requests] == [200, 400]  # batches 3-5 were queued, never sent
    assert ingest.event_ids() == expected_ids(obj)[:10]
    (stats,) = reported
    assert (stats.outcome, stats.records_sent, stats.batches) == ("failed", 10, 1)
    assert stats.error_type == "PermanentDeliveryError"


def test_after_a_refused_batch_the_one_built_meanwhile_is_not_sent(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10")
    obj = put_log(KEY, count=30)
    ingest.script(Reply(), Reply(400, body=b'{"error":"bad batch"}'))
    sender = Sender(Config.from_env(os.environ), None)
    with pytest.raises(PermanentDeliveryError, match="400"):
        forward_object(s3, obj.bucket, obj.key, sender=sender)
    assert [r.status for r in ingest.requests] == [200, 400]  # lines 21-30 were read, never sent
    assert ingest.event_ids() == expected_ids(obj)[:10]


class BreakingBody:
    """An S3 body whose connection breaks after ``good`` bytes, as botocore reports it."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._good = data, good

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        yield self._data[: self._good]
        raise ResponseStreamingError(error="Connection broken: IncompleteRead")

    def close(self) -> None:
        return


def test_a_read_that_breaks_while_a_batch_is_on_its_way_fails_after_that_batch_is_delivered(
    forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10")
    lines = make_alb_lines(30)
    text = ("\n".join(lines) + "\n").encode()
    cut = len(("\n".join(lines[:25]) + "\n").encode())  # lines 1-25 arrive, then the connection breaks
    # Lines 11-20 are on their way, their answer 1.5 s late, when the read breaks.
    ingest.script(Reply(), Hold(release=threading.Event(), seconds=1.5))

    class BreakingS3:
        def get_object(self, **kwargs: Any) -> dict[str, Any]:
            return {"Body": BreakingBody(text, cut), "ETag": '"0123456789abcdef0123456789abcdef"'}

    sender = Sender(Config.from_env(os.environ), None)
    reported: list[Any] = []
    with pytest.raises(ObjectReadError, match="failed part-way"):
        forward_object(BreakingS3(), "bucket", KEY.removesuffix(".gz"), sender=sender, report=reported.append)
    # The batch sent before the break was still answered and counted; the lines after it were not sent.
    (stats,) = reported
    assert (stats.outcome, stats.records_sent, stats.batches) == ("failed", 20, 2)
    assert [r.status for r in ingest.requests] == [200, 200]
    assert [record["line_number"] for record in ingest.records()] == list(range(1, 21))


def test_the_credential_is_fetched_before_the_first_batch_on_the_invoking_thread(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10", HTTP_AUTH_TYPE="bearer", HTTP_AUTH_CREDENTIALS="unused")
    obj = put_log(KEY, count=30)
    fetched_on: list[str] = []

    class Credential:  # a cached secret: fetched once, then reused
        def get(self) -> str:
            if not fetched_on:
                fetched_on.append(threading.current_thread().name)
            return "token-0123456789"

    sender = Sender(Config.from_env(os.environ), Credential())  # type: ignore[arg-type]
    forward_object(s3, obj.bucket, obj.key, sender=sender)
    # boto3's default session, which makes the secret's client, is not safe to share between threads.
    assert fetched_on == [threading.main_thread().name]
    assert {r.header("Authorization") for r in ingest.requests} == {"Bearer token-0123456789"}


def test_the_interpreter_switches_threads_every_millisecond_while_delivering_and_is_restored(
    s3: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="10")
    obj = put_log(KEY, count=30)
    seen: list[float] = []

    def watch(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            seen.append(sys.getswitchinterval())
            yield record

    before = sys.getswitchinterval()
    sender = Sender(Config.from_env(os.environ), None)
    forward_object(s3, obj.bucket, obj.key, sender=sender, enrich=watch)
    assert set(seen) == {min(before, DELIVERY_SWITCH_INTERVAL)}
    assert sys.getswitchinterval() == before
    assert ingest.event_ids() == expected_ids(obj)
