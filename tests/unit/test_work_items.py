"""Work items: what the work queue carries between invocations (continuations) and from replay (backfill)."""

from __future__ import annotations

import json

import pytest

from forwarder.work import ORIGIN_BACKFILL, ORIGIN_CONTINUATION, WorkItem, WorkItemError, is_work_item


def test_a_work_item_survives_its_message_body() -> None:
    item = WorkItem(
        bucket="logs", key="AWSLogs/1/elasticloadbalancing/x é.log.gz", etag="abc", version_id="v1"
    )
    assert WorkItem.from_body(item.to_body()) == item


def test_a_continuation_starts_where_the_last_invocation_stopped() -> None:
    item = WorkItem(bucket="logs", key="k.log.gz", etag="abc")
    later = item.continued(40_001).continued(80_001)
    assert (later.start_line, later.invocation, later.origin) == (80_001, 3, ORIGIN_CONTINUATION)
    assert (later.bucket, later.key, later.etag) == ("logs", "k.log.gz", "abc")
    assert item.origin == ORIGIN_BACKFILL


def test_quotes_around_the_etag_are_dropped_as_s3_returns_them() -> None:
    body = json.dumps(
        {
            "forwarder_work": {
                "v": 1,
                "bucket": "b",
                "key": "k",
                "etag": '"abc"',
                "start_line": 1,
                "invocation": 1,
            }
        }
    )
    assert WorkItem.from_body(body).etag == "abc"


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"v": 2}, "version 2"),
        ({"bucket": ""}, "bucket"),
        ({"etag": None}, "etag"),
        ({"start_line": 0}, "start_line"),
        ({"start_line": True}, "start_line"),
        ({"invocation": "2"}, "invocation"),
        ({"origin": "elsewhere"}, "origin"),
        ({"version_id": ""}, "version_id"),
        ({"rejected": -1}, "rejected"),
    ],
)
def test_an_invalid_work_item_names_the_field(change: dict[str, object], names: str) -> None:
    item = {"v": 1, "bucket": "b", "key": "k", "etag": "e", "start_line": 1, "invocation": 1, **change}
    with pytest.raises(WorkItemError, match=names):
        WorkItem.from_body(json.dumps({"forwarder_work": item}))


def test_only_bodies_under_the_work_key_are_work_items() -> None:
    assert is_work_item({"forwarder_work": {}})
    assert not is_work_item({"Records": [{"eventSource": "aws:s3"}]})
    assert not is_work_item(["forwarder_work"])
    with pytest.raises(WorkItemError, match="JSON"):
        WorkItem.from_body("not json")


def test_records_refused_along_a_chain_add_up_and_a_backfill_body_does_not_mention_them() -> None:
    item = WorkItem(bucket="logs", key="k.log.gz", etag="abc")
    assert "rejected" not in item.to_body()
    later = item.continued(401, rejected=2).continued(801).continued(1201, rejected=1)
    assert later.rejected == 3
    assert WorkItem.from_body(later.to_body()) == later
