"""The answer to CloudFormation: once, in time, over verified HTTPS, retried within bounds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cfn import CustomResource, FakeContext, ResponseReceiver, World, default_properties, snapshot

from provisioner import handler, response
from provisioner.state import decode


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_retries_server_errors_then_delivers(response_receiver: ResponseReceiver) -> None:
    response_receiver.fail_with = [500, 503]
    fake = FakeClock()
    url = response_receiver.url_for("req-1")

    delivered = response.send_response(url, b'{"Status":"SUCCESS"}', sleep=fake.sleep, clock=fake.clock)

    assert delivered
    puts = response_receiver.puts_for("req-1")
    assert len(puts) == 3 and {p.body for p in puts} == {b'{"Status":"SUCCESS"}'}
    assert puts[0].headers["content-type"] == ""
    assert "X-Amz-Signature=demo" in puts[0].path, "the pre-signed query string is sent as is"
    assert len(fake.sleeps) == 2 and fake.sleeps[0] < fake.sleeps[1] * 2


def test_an_expired_url_is_not_retried(response_receiver: ResponseReceiver) -> None:
    response_receiver.fail_with = [403]
    fake = FakeClock()

    delivered = response.send_response(
        response_receiver.url_for("req-2"), b"{}", sleep=fake.sleep, clock=fake.clock
    )

    assert not delivered
    assert len(response_receiver.puts_for("req-2")) == 1
    assert fake.sleeps == []


def test_an_unreachable_url_gives_up_within_the_budget(response_receiver: ResponseReceiver) -> None:
    fake = FakeClock()
    url = response_receiver.url_for("req-3").replace(f":{response_receiver.port}/", ":9/")

    started = time.monotonic()
    delivered = response.send_response(url, b"{}", tries=5, budget=30.0, sleep=fake.sleep, clock=fake.clock)

    assert not delivered
    assert len(fake.sleeps) == 4, "five tries, four pauses, then it stops (crhelper would loop forever)"
    assert sum(fake.sleeps) < 30.0
    assert time.monotonic() - started < 5.0


def test_the_time_budget_caps_the_retries(response_receiver: ResponseReceiver) -> None:
    response_receiver.fail_with = [500] * 10
    fake = FakeClock()

    delivered = response.send_response(
        response_receiver.url_for("req-4"), b"{}", tries=10, budget=2.0, sleep=fake.sleep, clock=fake.clock
    )

    assert not delivered
    assert fake.now <= 2.0
    assert len(response_receiver.puts_for("req-4")) < 10


def test_only_https_is_used(response_receiver: ResponseReceiver) -> None:
    url = response_receiver.url_for("req-5").replace("https://", "http://")

    assert not response.send_response(url, b"{}", sleep=lambda _: None)
    assert response_receiver.puts_for("req-5") == []


def test_the_server_certificate_is_verified(response_receiver: ResponseReceiver, monkeypatch: Any) -> None:
    monkeypatch.setattr(response, "CA_FILE", None)  # the system store does not know the test CA
    fake = FakeClock()

    assert not response.send_response(
        response_receiver.url_for("req-6"), b"{}", tries=2, sleep=fake.sleep, clock=fake.clock
    )
    assert response_receiver.puts_for("req-6") == []


def test_a_timeout_answers_failed_once_with_an_id_delete_understands(
    resource: CustomResource, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = snapshot(world)
    monkeypatch.setattr(handler, "STEP_RESERVE_SECONDS", 0.0)
    helper = handler.get_helper()
    monkeypatch.setattr(helper, "_timeout_margin", 10.0)

    def slow_topic(**_: Any) -> None:
        time.sleep(3.0)

    resource.clients.sns.meta.events.register("before-call.sns.CreateTopic", slow_topic)
    properties = default_properties(world.alb_arn, world.forwarder_arn)
    event = resource.stack.event("Create", properties)

    # 12 s left and a 10 s margin: the timer fires 2 s in, while the topic is being created (the steps
    # before it take well under 2 s, even on a loaded machine; the topic takes 3 s).
    handler.handler(event, FakeContext(12.0))
    answer = resource.answer_of(event)

    assert answer.status == "FAILED"
    assert "ran out of time during 'create the topic'" in answer.reason
    assert "raise the provisioner function's timeout" in answer.reason
    record = decode(answer.physical_id)
    assert record is not None and record.prepared, "the id names what was being built"
    assert helper.last_answer["status"] == "FAILED"

    # The work went on after the timeout answer (Lambda would have frozen it); the rollback cleans up.
    rollback = resource.delete(answer.physical_id, properties)
    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == start


def test_too_little_time_left_stops_before_changing_anything(resource: CustomResource, world: World) -> None:
    start = snapshot(world)
    event = resource.stack.event("Create", default_properties(world.alb_arn, world.forwarder_arn))

    answer = resource.send(event, seconds=20.0)

    assert answer.status == "FAILED"
    assert "stopped before check the load balancer" in answer.reason
    assert "raise the provisioner's timeout" in answer.reason
    assert snapshot(world) == start


def test_an_http_response_url_gets_no_answer_at_all(
    resource: CustomResource, world: World, response_receiver: ResponseReceiver
) -> None:
    event = resource.stack.event(
        "Delete", default_properties(world.alb_arn, world.forwarder_arn), physical_id="x"
    )
    event["ResponseURL"] = event["ResponseURL"].replace("https://", "http://")

    handler.handler(event, FakeContext())

    assert response_receiver.puts == []
    last = handler.get_helper().last_answer
    assert last["status"] == "SUCCESS" and last["delivered"] is False
