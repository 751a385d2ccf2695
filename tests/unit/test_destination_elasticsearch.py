"""The elasticsearch destination without a network: index names, the _bulk body, reading _bulk answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forwarder.config import Config
from forwarder.destinations import Rejection, Verdict, destination_for
from forwarder.destinations.elasticsearch import index_problems
from forwarder.sender import Batch, HttpResponse, iter_batches

ENDPOINT = "https://search.example.com:9200/_bulk"
TIME = "2025-03-14T09:30:00.123456Z"


def destination(index: str = "alb-logs-%Y.%m.%d") -> Any:
    return destination_for(Config(endpoint=ENDPOINT, output_format="elasticsearch", es_index=index))


def batch_of(count: int, index: str = "alb-logs-%Y.%m.%d") -> Batch:
    es = destination(index)
    items = [es.encode({"time": TIME, "event_id": f"{n:032x}", "n": n}) for n in range(count)]
    return next(iter_batches(items, framing=es.framing, max_records=count, max_bytes=10**6))


def bulk_answer(*statuses: int) -> HttpResponse:
    items = []
    for status in statuses:
        item: dict[str, Any] = {"_index": "alb-logs", "_id": "x", "status": status}
        if status >= 300:
            item["error"] = {"type": f"type_{status}", "reason": f"reason\n{status}"}
        items.append({"create": item})
    body = {"took": 1, "errors": any(s >= 300 for s in statuses), "items": items}
    return HttpResponse(200, None, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("alb-logs-%Y.%m.%d", "alb-logs-2025.03.14"),
        ("logs-alb-default", "logs-alb-default"),
        ("alb-%Y-%m-%d-%H", "alb-2025-03-14-09"),
    ],
)
def test_index_from_the_record_time(template: str, name: str) -> None:
    lines = batch_of(1, template).body().splitlines()
    assert json.loads(lines[0]) == {"create": {"_index": name, "_id": f"{0:032x}"}}
    assert json.loads(lines[1]) == {"time": TIME, "event_id": f"{0:032x}", "n": 0, "@timestamp": TIME}


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "ES_INDEX is required"),
        ("alb-%y", "may use only %Y, %m, %d, %H as date placeholders (got %y)"),
        ("Alb-logs", "must be lowercase"),
        ("alb logs", "must not contain ' '"),
        ("alb:logs", "must not contain ':'"),
        ("_alb", "must not start with -, _ or +"),
        ("a" * 256, "at most 255 bytes"),
    ],
)
def test_index_problems(template: str, problem: str) -> None:
    assert problem in "; ".join(index_problems(template))


def test_body_ends_with_a_newline_and_pairs_actions_with_documents() -> None:
    body = batch_of(3).body()
    assert body.endswith(b"\n")
    lines = body.splitlines()
    assert len(lines) == 6
    assert [json.loads(line)["create"]["_id"] for line in lines[::2]] == [f"{n:032x}" for n in range(3)]


def test_without_document_ids_each_action_names_only_the_index() -> None:
    config = Config(endpoint=ENDPOINT, output_format="elasticsearch", es_index="alb", es_document_id="none")
    es = destination_for(config)
    encoded = [es.encode({"time": TIME, "event_id": f"{n:032x}", "n": n}) for n in range(2)]
    body = next(iter_batches(encoded, framing=es.framing, max_records=2, max_bytes=10**6)).body()
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines[::2] == [{"create": {"_index": "alb"}}] * 2
    assert [document["event_id"] for document in lines[1::2]] == [f"{n:032x}" for n in range(2)]


def test_errors_false_is_delivered() -> None:
    assert destination().read_response(bulk_answer(201, 201), batch_of(2)) == Verdict()
    # With ?filter_path=errors in HTTP_ENDPOINT there are no items to pair, and none are needed.
    assert destination().read_response(HttpResponse(200, None, b'{"errors":false}'), batch_of(2)) == Verdict()


def test_items_are_read_by_position() -> None:
    verdict = destination().read_response(bulk_answer(201, 409, 429, 400, 503, 201), batch_of(6))
    assert verdict.retry == (2, 4)
    assert verdict.duplicates == 1
    assert verdict.rejected == 1
    assert verdict.rejections == (Rejection(3, "400 type_400: reason 400"),)
    assert verdict.failure == "2 of 6 documents were not indexed yet (first: 429 type_429: reason 429)"
    assert not verdict.refused and not verdict.delivered


def test_a_retry_body_holds_only_the_failed_items() -> None:
    batch = batch_of(6)
    verdict = destination().read_response(bulk_answer(201, 429, 201, 201, 503, 201), batch)
    lines = batch.subset(verdict.retry).body().splitlines()
    assert [json.loads(line)["create"]["_id"] for line in lines[::2]] == [f"{1:032x}", f"{4:032x}"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html></html>", "without a _bulk response"),
        (b'{"acknowledged":true}', "without a _bulk response"),
        (b'{"errors":true}', "without a _bulk response"),
        (json.dumps({"errors": True, "items": [{"create": {"status": 201}}]}).encode(), "1 items for the 2"),
    ],
)
def test_answers_that_cannot_be_paired_are_refused(body: bytes, why: str) -> None:
    verdict = destination().read_response(HttpResponse(200, None, body), batch_of(2))
    assert verdict.refused and why in verdict.failure


def test_whole_request_statuses() -> None:
    es = destination()
    assert es.read_response(HttpResponse(429, "5", b""), batch_of(2)).retry == (0, 1)
    assert es.read_response(HttpResponse(413, None, b""), batch_of(2)).refused


@pytest.mark.parametrize(
    ("record", "index"),
    [
        ({"time": "2025-03-14T09:30:00Z", "event_time": "2025-03-15T00:00:00.000Z"}, "alb-logs-2025.03.14"),
        ({"raw": "x", "event_time": "2025-03-15T00:00:01.000Z"}, "alb-logs-2025.03.15"),  # CloudWatch Logs
        ({"time": 1741944600, "event_time": "2025-03-15T00:00:01.000Z"}, "alb-logs-2025.03.15"),
    ],
)
def test_the_date_comes_from_time_else_the_log_events_time(record: dict[str, Any], index: str) -> None:
    action, document = destination().encode({**record, "event_id": "0" * 32}).splitlines()
    assert json.loads(action)["create"]["_index"] == index
    assert json.loads(document)["@timestamp"][:10] == index[-10:].replace(".", "-")
