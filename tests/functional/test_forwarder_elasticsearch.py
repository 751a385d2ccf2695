"""OUTPUT_FORMAT=elasticsearch through the Lambda handler into a receiver answering as ``_bulk`` does.

Each test checks, per line of the file, that it exists exactly once in the intake's terms (one document per
event_id), that a retry resent only the items that failed, and the counts of the summary line.
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from alb_log_factory import MALFORMED_LINE, iter_alb_lines, log_key
from aws_events import s3_notification, sns_event, sqs_event
from ingest_server import IngestServer, ReceivedRequest, Reply

from forwarder import handler
from forwarder.pipeline import RejectedRecordsError
from forwarder.records import record_event_id
from forwarder.sender import TransientDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


@pytest.fixture
def bulk(intake_server: Any) -> IngestServer:
    return intake_server("elasticsearch", env={"ES_INDEX": "alb-logs-%Y.%m.%d", "BATCH_MAX_RECORDS": "20"})


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def sent_ids(request: ReceivedRequest) -> list[str]:
    return [action["create"]["_id"] for action in request.actions]


def retried_ids(request: ReceivedRequest) -> list[str]:
    """The ids of a request whose items answered 429 or 5xx: what the next request must hold, alone."""
    return [i for i, s in zip(sent_ids(request), request.item_statuses, strict=True) if s == 429 or s >= 500]


def assert_one_document_per_line(
    bulk: IngestServer, obj: Any, *, missing: frozenset[str] = frozenset()
) -> None:
    stored = bulk.documents()
    by_id = [doc_id for _, doc_id in stored]
    assert len(by_id) == len(set(by_id))  # never two documents for one event_id, in any index
    assert sorted(by_id) == sorted(set(ids_of(obj)) - missing)
    for (index, doc_id), document in stored.items():
        assert document["event_id"] == doc_id
        assert document["@timestamp"] == document["time"]
        assert index == "alb-logs-" + document["time"][:10].replace("-", ".")


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    return summaries[-1]


def test_every_line_becomes_one_document_in_the_index_of_its_day(
    invoke: Any, put_log: Any, bulk: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Lines from 23:58 to 00:03: two daily indexes.
    lines = list(iter_alb_lines(45, start=datetime(2025, 3, 14, 23, 58, tzinfo=UTC)))
    obj = put_log(KEY, lines)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [r.status for r in bulk.requests] == [200, 200, 200]
    assert all(r.header("Content-Type") == "application/x-ndjson" for r in bulk.requests)
    assert [i for r in bulk.requests for i in sent_ids(r)] == ids_of(obj)
    assert {index for index, _ in bulk.documents()} == {"alb-logs-2025.03.14", "alb-logs-2025.03.15"}
    assert_one_document_per_line(bulk, obj)
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["duplicates"], summary["rejected"]) == (45, 0, 0)
    assert (summary["outcome"], summary["retries"]) == ("ok", 0)


def test_partial_failures_resend_only_failed_items_then_fail_the_object_for_rejections(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    bulk: IngestServer,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    obj = put_log(KEY, count=40)
    ids = ids_of(obj)
    # A first delivery stopped after the first batch (a whole-request 503 with no retries left): lines
    # 1-20 are indexed, and the event comes back, as Lambda retries it.
    forwarder_env(HTTP_MAX_RETRIES="0")
    bulk.script(Reply(200), Reply(503))
    with pytest.raises(TransientDeliveryError):
        invoke(sns_event(s3_notification(obj)))
    assert len(bulk.documents()) == 20

    forwarder_env(HTTP_MAX_RETRIES="3")
    handler.reset(sleep=sleeps.append)  # a new execution environment reads the new setting
    bulk.reset_requests()
    # Lines 1-20 are there already (409); in the second batch, line 22 is throttled once, line 25
    # answers 503 then 429, line 30 is a mapping conflict (400) every time.
    bulk.fail_items({ids[21]: [429], ids[24]: [503, 429], ids[29]: [400, 400]})
    with caplog.at_level(logging.INFO), pytest.raises(RejectedRecordsError) as caught:
        invoke(sns_event(s3_notification(obj)))

    requests = bulk.requests
    assert [sent_ids(r) for r in requests] == [ids[:20], ids[20:], [ids[21], ids[24]], [ids[24]]]
    assert requests[0].item_statuses == (409,) * 20
    assert requests[1].item_statuses.count(201) == 17
    for request, following in itertools.pairwise(requests[1:]):
        assert sent_ids(following) == retried_ids(request)  # only the failed items, alone
    assert len(sleeps) == 2  # backoff before each resend
    assert_one_document_per_line(bulk, obj, missing=frozenset({ids[29]}))

    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["duplicates"], summary["rejected"]) == (39, 20, 1)
    assert (summary["outcome"], summary["retries"]) == ("failed", 2)
    assert summary["first_rejections"] == [f"line 30: 400 document_parsing_exception: {_reason(ids[29])}"]
    message = str(caught.value)
    assert "rejected 1 of the 40 records" in message and "line 30: 400 document_parsing_exception" in message
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (emf["RejectedRecords"], emf["DuplicateRecords"], emf["ObjectsFailed"]) == (1, 20, 1)


def _reason(doc_id: str) -> str:
    return (
        f"[1:42] failed to parse field [elb_status_code] of type [long] in document with id '{doc_id}'. "
        "Preview of field's value: 'abc'"
    )


def test_redelivered_object_counts_duplicates_and_succeeds(
    invoke: Any, put_log: Any, bulk: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=25)
    event = sqs_event(s3_notification(obj))
    with caplog.at_level(logging.INFO):
        invoke(event)
        assert invoke(event) == {"batchItemFailures": []}  # S3 and SQS deliver at least once
    assert_one_document_per_line(bulk, obj)
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["duplicates"], summary["outcome"]) == (25, 25, "ok")


def test_unparseable_lines_are_indexed_with_the_sending_time(
    invoke: Any, put_log: Any, bulk: IngestServer
) -> None:
    lines = [*iter_alb_lines(3), MALFORMED_LINE]
    obj = put_log(KEY, lines)
    invoke(sns_event(s3_notification(obj)))
    (malformed,) = [d for d in bulk.documents().values() if "parse_error" in d]
    assert malformed["raw"] == MALFORMED_LINE
    assert malformed["@timestamp"][:4] == str(datetime.now(UTC).year)
    assert len(bulk.documents()) == 4


def test_items_still_throttled_after_the_retries_fail_the_object(
    invoke: Any, put_log: Any, forwarder_env: Any, bulk: IngestServer, sleeps: list[float]
) -> None:
    forwarder_env(HTTP_MAX_RETRIES="2")
    obj = put_log(KEY, count=5)
    ids = ids_of(obj)
    bulk.fail_items({ids[1]: [429, 429, 429]})
    answer = invoke(sqs_event(s3_notification(obj)))
    assert len(answer["batchItemFailures"]) == 1
    assert [sent_ids(r) for r in bulk.requests] == [ids, [ids[1]], [ids[1]]]
    assert len(sleeps) == 2
    assert_one_document_per_line(bulk, obj, missing=frozenset({ids[1]}))


def test_a_non_bulk_answer_is_a_permanent_failure(
    invoke: Any, put_log: Any, bulk: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    bulk.script(Reply(200, body=b"<html>welcome</html>"))
    obj = put_log(KEY, count=5)
    answer = invoke(sqs_event(s3_notification(obj)))
    assert len(answer["batchItemFailures"]) == 1
    assert len(bulk.requests) == 1
    error = summary_of(caplog)["error"]
    assert "without a _bulk response" in error and "HTTP_ENDPOINT is the _bulk URL" in error
