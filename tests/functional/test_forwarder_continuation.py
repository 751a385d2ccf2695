"""Continuing mid-file: one large object forwarded over several invocations through the stack's work queue.

moto plays S3 and SQS (the work queue, with its redrive policy to the dead-letter queue, as the template
sets them); the ingest side is the real HTTP receiver on 127.0.0.1. The test plays the work queue's event
source mapping: it receives one message at a time from the moto queue (BatchSize 1), invokes the real
handler with the SQS event Lambda builds from it, deletes the message unless the answer lists it in
batchItemFailures, and otherwise makes it visible again at once (its visibility timeout, fast-forwarded).
Each invocation runs on a fake clock on which every request the receiver gets takes 10 s of a 40 s
invocation, so the deadline arrives after four batches.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from alb_log_factory import REGION
from aws_events import (
    BUCKET,
    FUNCTION_NAME,
    Stored,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
    sqs_event_from,
)
from ingest_server import IngestServer, Reply

from forwarder import handler
from forwarder.records import record_event_id
from forwarder.redrive import redrive
from forwarder.sender import DeadlineError
from forwarder.work import WorkItem

pytest_plugins = ["conftest_forwarder"]

KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/big.log.gz"
LINES = 1000
BATCH_RECORDS = 100
INVOCATION_MS = 40_000
BATCH_MS = 10_000  # with HTTP_TIMEOUT_SECONDS=2, the 5 s margin and 3 s kept to queue the rest: 4 batches
# As templates/onboarding.yaml sets the work queue.
VISIBILITY_TIMEOUT = "5400"
MAX_RECEIVE_COUNT = "5"


class BatchClock:
    """The Lambda context on a fake clock: each request the receiver got since it was made took BATCH_MS."""

    function_name = FUNCTION_NAME

    def __init__(self, ingest: IngestServer) -> None:
        self._ingest = ingest
        self._start = len(ingest.requests)
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, INVOCATION_MS - (len(self._ingest.requests) - self._start) * BATCH_MS)


@dataclass
class WorkQueue:
    """The moto work queue and dead-letter queue, and the event source mapping the test plays."""

    sqs: Any
    url: str
    arn: str
    dead_letter_url: str
    ingest: IngestServer

    def poll(self) -> dict[str, Any] | None:
        """Receive one message and invoke the handler with it; None when there is nothing to receive
        (moto, like SQS, moves a message received MAX_RECEIVE_COUNT times to the dead-letter queue then)."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        if not messages:
            return None
        answer = handler.handler(sqs_event_from(messages, queue_arn=self.arn), BatchClock(self.ingest))
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return dict(answer)

    def drain(self) -> list[dict[str, Any]]:
        answers = []
        while (answer := self.poll()) is not None:
            answers.append(answer)
            assert len(answers) < 20, "the chain does not end"
        return answers

    def bodies(self, url: str) -> list[str]:
        """The messages waiting in a queue, left there (visible again at once)."""
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [message["Body"] for message in messages.get("Messages", [])]


@pytest.fixture
def work_queue(aws: None, forwarder_env: Any, sleeps: list[float], ingest: IngestServer) -> WorkQueue:
    sqs = boto3.client("sqs", region_name=REGION)
    dead_letters = sqs.create_queue(QueueName="onboarding-ForwarderDeadLetterQueue")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(
        QueueName="onboarding-WorkQueue",
        Attributes={
            "VisibilityTimeout": VISIBILITY_TIMEOUT,
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    forwarder_env(WORK_QUEUE_URL=url, BATCH_MAX_RECORDS=str(BATCH_RECORDS))
    return WorkQueue(sqs, url, arn, dead_letters, ingest)


def notify(obj: Stored, ingest: IngestServer, *more: Stored) -> None:
    """The topic's invocation for new objects (asynchronous: a failure would raise)."""
    assert handler.handler(sns_event(s3_notification(obj, *more)), BatchClock(ingest)) is None


def uncut_ids(obj: Stored, count: int = LINES) -> list[str]:
    """The event_ids a run that read the object in one go sends."""
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, count + 1)]


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.summary for r in caplog.records if r.name == "forwarder.summary"]


def chain(caplog: pytest.LogCaptureFixture) -> list[tuple[Any, ...]]:
    return [
        (s["invocation"], s["start_line"], s.get("continued_at"), s["outcome"], s["records_sent"])
        for s in summaries(caplog)
    ]


def test_a_large_object_takes_several_invocations_and_arrives_once_in_order_as_if_uncut(
    work_queue: WorkQueue,
    put_log: Any,
    ingest: IngestServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    obj = put_log(KEY, count=LINES)
    with caplog.at_level(logging.INFO):
        notify(obj, ingest)
        answers = work_queue.drain()
    assert answers == [{"batchItemFailures": []}] * 2
    assert ingest.event_ids() == uncut_ids(obj)
    assert [r["line_number"] for r in ingest.records()] == list(range(1, LINES + 1))
    assert chain(caplog) == [
        (1, 1, 401, "continued", 400),
        (2, 401, 801, "continued", 400),
        (3, 801, None, "ok", 200),
    ]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [doc["ObjectsContinued"] for doc in emf] == [1, 1, 0]
    assert [doc["ObjectsFailed"] for doc in emf] == [0, 0, 0]
    assert work_queue.bodies(work_queue.dead_letter_url) == []


def test_objects_of_an_event_with_no_time_left_are_handed_on_from_their_first_line(
    work_queue: WorkQueue, put_log: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = put_log(KEY, count=LINES)
    second = put_log(KEY.replace("big", "next"), count=150, seed=2)
    with caplog.at_level(logging.INFO):
        notify(first, ingest, second)
        assert work_queue.drain() == [{"batchItemFailures": []}] * 3
    received = ingest.event_ids()
    assert sorted(received) == sorted(uncut_ids(first) + uncut_ids(second, 150))
    assert len(received) == len(set(received))
    by_key = [(s["key"].split("/")[-1], s["start_line"], s.get("continued_at")) for s in summaries(caplog)]
    assert by_key[:2] == [("big.log.gz", 1, 401), ("next.log.gz", 1, 1)]  # the second was not started


def test_an_object_overwritten_between_invocations_is_not_resumed(
    work_queue: WorkQueue, put_log: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=LINES)
    notify(obj, ingest)
    newer = put_log(KEY, count=LINES, seed=2)
    assert newer.etag != obj.etag
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answer = work_queue.poll()
    assert answer is not None and len(answer["batchItemFailures"]) == 1
    (summary,) = summaries(caplog)
    assert summary["error_type"] == "ObjectChangedError"
    assert f"s3://{BUCKET}/{KEY}" in summary["error"]
    assert f"lines 401 to the end of the version with ETag {obj.etag}" in summary["error"]
    assert "its own notification" in summary["error"]
    # Only the first invocation's lines of the old version arrived; none of the new one from the item.
    assert ingest.event_ids() == uncut_ids(obj)[:400]


def test_in_a_versioned_bucket_the_version_read_first_is_resumed_after_an_overwrite(
    work_queue: WorkQueue, s3: Any, put_log: Any, ingest: IngestServer
) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    obj = put_log(KEY, count=LINES)
    notify(obj, ingest)
    put_log(KEY, count=LINES, seed=2)
    assert work_queue.drain() == [{"batchItemFailures": []}] * 2
    # The ids come from the ETag GetObject answered: those of the first version, for every line.
    assert ingest.event_ids() == uncut_ids(obj)


def test_a_dead_endpoint_ends_in_the_dead_letter_queue_at_the_offset_and_redrive_resumes_there(
    work_queue: WorkQueue, put_log: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=LINES)
    notify(obj, ingest)
    ingest.set_default(Reply(503))
    # No line gets through: each invocation fails its message and writes no continuation; SQS receives it
    # MAX_RECEIVE_COUNT times, then its redrive policy moves it to the dead-letter queue as it is.
    answers = work_queue.drain()
    assert len(answers) == int(MAX_RECEIVE_COUNT)
    assert all(len(answer["batchItemFailures"]) == 1 for answer in answers)
    (body,) = work_queue.bodies(work_queue.dead_letter_url)
    item = WorkItem.from_body(body)
    assert (item.key, item.etag, item.start_line, item.invocation) == (KEY, obj.etag, 401, 2)

    ingest.set_default(Reply())
    caplog.clear()
    invoked = RecordingLambda()
    out = io.StringIO()
    summary = redrive(
        work_queue.sqs,
        invoked,
        queue_url=work_queue.dead_letter_url,
        function_name=FUNCTION_NAME,
        wait_seconds=0,
        out=out,
    )
    assert (summary.redriven, summary.ok) == (1, True)
    assert f"s3://{BUCKET}/{KEY} from line 401" in out.getvalue()
    with caplog.at_level(logging.INFO):
        for payload in invoked.payloads:  # what Lambda runs for each accepted asynchronous invocation
            assert handler.handler(payload, BatchClock(ingest)) is None
        assert work_queue.drain() == [{"batchItemFailures": []}]
    assert chain(caplog) == [(2, 401, 801, "continued", 400), (3, 801, None, "ok", 200)]
    assert ingest.event_ids() == uncut_ids(obj)


def test_a_failed_work_item_comes_back_after_a_growing_delay_not_the_visibility_timeout(
    work_queue: WorkQueue, put_log: Any, ingest: IngestServer
) -> None:
    obj = put_log(KEY, count=LINES)
    notify(obj, ingest)
    delays: list[tuple[str, int]] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        delays.append((params["QueueUrl"], params["VisibilityTimeout"]))

    # What the forwarder asks of SQS, as SQS would get it (the test's own calls go through another client).
    sqs = handler._get_runtime().continuation._sqs  # type: ignore[union-attr]
    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", seen)
    ingest.set_default(Reply(503))
    work_queue.drain()
    # Without it, a failed item would wait out the queue's 90-minute visibility timeout each time.
    assert delays == [(work_queue.url, seconds) for seconds in (60, 120, 240, 480, 900)]


def test_records_refused_early_in_the_chain_still_fail_the_object_at_its_end(
    work_queue: WorkQueue, intake_server: Any, put_log: Any, caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=LINES)
    with intake_server("otlp") as otlp:
        work_queue.ingest = otlp
        otlp.reject_records([record_event_id(BUCKET, KEY, obj.etag, 5)])
        with caplog.at_level(logging.INFO):
            notify(obj, otlp)
            answers = [work_queue.poll(), work_queue.poll()]
    assert answers[0] == {"batchItemFailures": []}
    assert answers[1] is not None and len(answers[1]["batchItemFailures"]) == 1
    first, _, last = summaries(caplog)
    assert (first["outcome"], first["rejected"], first["continued_at"]) == ("continued", 1, 401)
    assert (last["outcome"], last["error_type"], last["rejected_earlier"]) == (
        "failed",
        "RejectedRecordsError",
        1,
    )
    assert "1 in earlier invocations" in last["error"]


def test_a_cloudwatch_logs_delivery_is_never_continued(work_queue: WorkQueue, ingest: IngestServer) -> None:
    """It lives only in its event, which the subscription retries whole."""
    messages = [f"START RequestId: {n:08d} Version: $LATEST" for n in range(LINES)]
    event = cloudwatch_logs_event(cloudwatch_logs_data(log_events(*messages)))
    with pytest.raises(DeadlineError, match="stopped before sending lines 401-500"):
        handler.handler(event, BatchClock(ingest))
    assert work_queue.bodies(work_queue.url) == []


def test_without_a_working_queue_the_deadline_fails_the_event_as_before(
    work_queue: WorkQueue, forwarder_env: Any, put_log: Any, ingest: IngestServer
) -> None:
    forwarder_env(WORK_QUEUE_URL=work_queue.url + "-deleted")
    obj = put_log(KEY, count=LINES)
    with pytest.raises(DeadlineError, match="stopped before sending lines 401-500"):
        handler.handler(sns_event(s3_notification(obj)), BatchClock(ingest))
    assert ingest.event_ids() == uncut_ids(obj)[:400]


class RecordingLambda:
    """A Lambda client that accepts every asynchronous invocation and keeps its payload."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def invoke(self, **call: Any) -> dict[str, Any]:
        assert call["InvocationType"] == "Event"
        self.payloads.append(json.loads(call["Payload"]))
        return {"StatusCode": 202}
