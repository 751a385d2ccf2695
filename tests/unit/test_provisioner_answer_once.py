"""The guarded crhelper resource answers each request exactly once, within CloudFormation's limits."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from provisioner import response
from provisioner.cfn_resource import GuardedResource
from provisioner.state import decode

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/weblogs/1b2c3d4e-0000-1111-2222-333344445555"


class Context:
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:p"
    function_name = "p"
    aws_request_id = "r"

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._end - time.monotonic()) * 1000), 0)


class Recorder:
    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, body: bytes) -> bool:
        assert len(body) < 4096
        with self.lock:
            self.answers.append(json.loads(body))
        return True


def event(request_type: str = "Create", **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://127.0.0.1:1/answer?X-Amz-Signature=x",
        "StackId": STACK_ID,
        "RequestId": "req-1",
        "LogicalResourceId": "LogOnboarding",
        "ResourceType": "Custom::AlbLogOnboarding",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:p"},
        **extra,
    }


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Recorder()


def test_timeout_and_normal_answer_never_both_go_out(recorder: Recorder) -> None:
    helper = GuardedResource(timeout_margin_seconds=0.3, sender=recorder)

    def slow_create(event: Any, context: Any) -> str:
        helper.current_step = "create the topic"
        time.sleep(0.4)
        return "late-id"

    helper.create(slow_create)
    helper(event(), Context(0.35))  # the timer fires ~0.05 s in, while create still runs

    assert len(recorder.answers) == 1
    (answer,) = recorder.answers
    assert answer["Status"] == "FAILED"
    assert "ran out of time during 'create the topic'" in answer["Reason"]
    assert decode(answer["PhysicalResourceId"]) is not None, "even a timeout answers with an id Delete knows"


def test_the_normal_answer_cancels_the_timer(recorder: Recorder) -> None:
    helper = GuardedResource(timeout_margin_seconds=0.2, sender=recorder)
    helper.create(lambda event, context: "the-id")

    helper(event(), Context(0.5))
    time.sleep(0.4)

    assert [a["Status"] for a in recorder.answers] == ["SUCCESS"]
    assert recorder.answers[0]["PhysicalResourceId"] == "the-id"


def test_concurrent_sends_produce_exactly_one_answer(recorder: Recorder) -> None:
    helper = GuardedResource(sender=recorder)
    helper._crhelper_init(event(), Context(60))
    helper._timer.cancel()
    barrier = threading.Barrier(16)

    def send() -> None:
        barrier.wait()
        helper._send("FAILED", "race")

    threads = [threading.Thread(target=send) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(recorder.answers) == 1


def test_each_request_of_a_warm_container_is_answered(recorder: Recorder) -> None:
    helper = GuardedResource(sender=recorder)
    helper.create(lambda event, context: "id-1")
    helper.delete(lambda event, context: None)

    helper(event(), Context(60))
    helper(event("Delete", PhysicalResourceId="id-1", RequestId="req-2"), Context(60))

    assert [(a["Status"], a["PhysicalResourceId"]) for a in recorder.answers] == [
        ("SUCCESS", "id-1"),
        ("SUCCESS", "id-1"),
    ]


def test_a_create_that_fails_before_setting_an_id_still_answers_a_parseable_one(recorder: Recorder) -> None:
    helper = GuardedResource(sender=recorder)

    def broken(event: Any, context: Any) -> str:
        raise RuntimeError("boom")

    helper.create(broken)
    helper(event(), Context(60))

    (answer,) = recorder.answers
    assert answer["Status"] == "FAILED" and answer["Reason"] == "boom"
    record = decode(answer["PhysicalResourceId"])
    assert record is not None and not record.prepared


def test_an_init_failure_is_answered_once(recorder: Recorder) -> None:
    helper = GuardedResource(sender=recorder)
    helper.init_failure(RuntimeError("no region"))

    helper(event("Delete", PhysicalResourceId="keep-me"), Context(60))

    assert [(a["Status"], a["PhysicalResourceId"]) for a in recorder.answers] == [("FAILED", "keep-me")]


def test_failed_answers_carry_no_data(recorder: Recorder) -> None:
    helper = GuardedResource(sender=recorder)

    def fails_late(event: Any, context: Any) -> str:
        helper.Data.update({"BucketName": "b"})
        raise RuntimeError("late")

    helper.create(fails_late)
    helper(event(), Context(60))

    assert recorder.answers[0]["Data"] == {}


def test_body_stays_under_4096_bytes_and_keeps_the_start_of_the_reason() -> None:
    reason = "step 'merge the bucket policy' failed: PutBucketPolicy returned MalformedPolicy: " + "x" * 20000
    body = response.build_body(
        status="FAILED",
        reason=reason,
        physical_id="alblogs:v1:0a1b2c3d:" + "A" * 1000,
        stack_id=STACK_ID,
        request_id="req",
        logical_id="LogOnboarding",
        data={"BucketName": "b"},
    )

    assert len(body) < 4096
    doc = json.loads(body)
    assert doc["Reason"].startswith(
        "step 'merge the bucket policy' failed: PutBucketPolicy returned MalformedPolicy"
    )
    assert doc["Reason"].endswith("(truncated; see the provisioner's log)")
    assert doc["PhysicalResourceId"].endswith("A" * 1000), "the id is never cut"


def test_body_strips_control_characters() -> None:
    body = response.build_body(
        status="FAILED",
        reason="a\x00b\x1b[31mc",
        physical_id="p",
        stack_id="s",
        request_id="r",
        logical_id="l",
    )
    assert json.loads(body)["Reason"] == "a?b?[31mc"


def test_a_huge_data_map_is_dropped_rather_than_breaking_the_limit() -> None:
    body = response.build_body(
        status="SUCCESS",
        reason="",
        physical_id="p",
        stack_id="s",
        request_id="r",
        logical_id="l",
        data={f"k{i}": "v" * 100 for i in range(60)},
    )
    assert len(body) < 4096
    assert json.loads(body)["Data"] == {}
