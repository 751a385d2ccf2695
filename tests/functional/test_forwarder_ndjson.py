"""OUTPUT_FORMAT=ndjson through the Lambda handler: one record per line, every line once."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from alb_log_factory import log_key
from aws_events import s3_notification, sqs_event
from ingest_server import IngestServer, Reply

from forwarder.records import record_event_id

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


@pytest.fixture
def receiver(forwarder_env: Any) -> Iterator[IngestServer]:
    with IngestServer(intake="ndjson") as server:
        forwarder_env(HTTP_ENDPOINT=server.url, OUTPUT_FORMAT="ndjson", BATCH_MAX_RECORDS="20")
        yield server


def test_each_line_arrives_once_as_one_ndjson_line(
    invoke: Any, put_log: Any, receiver: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(Reply(503))
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        answer = invoke(sqs_event(s3_notification(obj)))
    assert answer == {"batchItemFailures": []}
    assert [r.status for r in receiver.requests] == [503, 200, 200, 200]
    assert receiver.requests[0].header("Content-Type") == "application/x-ndjson"
    expected = [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, 46)]
    assert receiver.event_ids() == expected
    for request in receiver.accepted():
        assert gzip.decompress(request.raw_body).count(b"\n") == len(request.logs)
    summary = next(r for r in caplog.records if r.name == "forwarder.summary").summary
    assert (summary["records_sent"], summary["batches"], summary["rejected"]) == (45, 3, 0)
