"""Two stacks changing one shared bucket at the same moment keep each other's statements and rules.

The bucket policy and the notification configuration are read-merge-write documents without conditional
writes. `WorstInterleaving` pauses two clients at the worst point, deterministically: both have read,
A writes, B writes the version it read (without A's change), and only then does A read back.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cfn import ACCOUNT, LOGICAL_ID, REGION, CustomResource, World, default_properties, provisioner_clients

from provisioner import lifecycle
from provisioner.arns import Environment
from provisioner.deadline import Deadline
from provisioner.naming import rule_id
from provisioner.state import decode

BUCKET = "team-logs"
THEIRS = {
    "Sid": "Theirs",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/theirs/*",
}
THEIR_RULE = {
    "Id": "theirs",
    "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:theirs",
    "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "theirs/"}]}},
}
WAIT_SECONDS = 20.0  # only a guard against a hang: the order is set by the events, not by time


class WorstInterleaving:
    """Orders the first write of two clients on one document: A writes, B overwrites, A reads back."""

    def __init__(self, read_op: str, write_op: str) -> None:
        self.read_op, self.write_op = read_op, write_op
        self.b_at_write = threading.Event()
        self.a_wrote = threading.Event()
        self.b_wrote = threading.Event()
        self.a_writes = 0

    def attach(self, a: Any, b: Any) -> None:
        a.meta.events.register(f"before-call.s3.{self.write_op}", self._a_before_write)
        a.meta.events.register(f"after-call.s3.{self.write_op}", self._a_after_write)
        a.meta.events.register(f"before-call.s3.{self.read_op}", self._a_before_read)
        b.meta.events.register(f"before-call.s3.{self.write_op}", self._b_before_write)
        b.meta.events.register(f"after-call.s3.{self.write_op}", lambda **_: self.b_wrote.set())

    @staticmethod
    def _wait(event: threading.Event, what: str) -> None:
        assert event.wait(WAIT_SECONDS), f"the interleaving never reached: {what}"

    def _a_before_write(self, **_: Any) -> None:
        if self.a_writes == 0:
            self._wait(self.b_at_write, "B read and is about to write")
        self.a_writes += 1

    def _a_after_write(self, **_: Any) -> None:
        self.a_wrote.set()

    def _a_before_read(self, **_: Any) -> None:
        if self.a_wrote.is_set():
            self._wait(self.b_wrote, "B overwrote A's change")

    def _b_before_write(self, **_: Any) -> None:
        if not self.b_at_write.is_set():
            self.b_at_write.set()
            self._wait(self.a_wrote, "A wrote first")


class LateOverwrite(WorstInterleaving):
    """Both read, A writes and reads its change back, and only then B writes the version it read."""

    def __init__(self, read_op: str, write_op: str) -> None:
        super().__init__(read_op, write_op)
        self.a_read_back = threading.Event()

    def attach(self, a: Any, b: Any) -> None:
        super().attach(a, b)
        a.meta.events.register(f"after-call.s3.{self.read_op}", self._a_after_read)

    def _a_after_read(self, **_: Any) -> None:
        if self.a_wrote.is_set():
            self.a_read_back.set()

    def _a_before_read(self, **_: Any) -> None:
        if self.a_read_back.is_set():
            self._wait(self.b_wrote, "B overwrote A's change after A read it back")

    def _b_before_write(self, **_: Any) -> None:
        if not self.b_at_write.is_set():
            self.b_at_write.set()
            self._wait(self.a_read_back, "A wrote and read its change back")


class Stack:
    """One stack's custom resource, driven through lifecycle with its own clients."""

    def __init__(self, name: str, load_balancer: str, prefix: str, world: World) -> None:
        self.clients = provisioner_clients()
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"
        self.props = default_properties(load_balancer, world.forwarder_arn, BucketName=BUCKET, Prefix=prefix)
        self.physical_id = ""

    def context(self) -> lifecycle.RequestContext:
        return lifecycle.RequestContext(
            self.stack_id, str(uuid.uuid4()), LOGICAL_ID, Environment("aws", REGION, ACCOUNT)
        )

    def create(self) -> None:
        outcome = lifecycle.create(
            self.clients,
            self.context(),
            raw_props=self.props,
            deadline=Deadline.unlimited(),
            on_physical_id=lambda _: None,
            progress=lambda _: None,
        )
        self.physical_id = outcome.physical_id

    def delete(self) -> None:
        lifecycle.delete(
            self.clients,
            self.context(),
            physical_id=self.physical_id,
            raw_props=self.props,
            deadline=Deadline.unlimited(),
            progress=lambda _: None,
        )

    def gen(self) -> str:
        record = decode(self.physical_id)
        assert record is not None
        return record.gen


def together(a: Callable[[], None], b: Callable[[], None]) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(a), pool.submit(b)]
        for future in futures:
            future.result(timeout=60)


@pytest.fixture
def stacks(world: World) -> tuple[Stack, Stack]:
    world.s3.create_bucket(Bucket=BUCKET)
    world.s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [THEIRS]})
    )
    world.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"TopicConfigurations": [THEIR_RULE]}
    )
    return Stack("web", world.alb_arn, "web", world), Stack("api", world.alb2_arn, "api", world)


def interleave(a: Stack, b: Stack, order: type[WorstInterleaving] = WorstInterleaving) -> None:
    order("GetBucketPolicy", "PutBucketPolicy").attach(a.clients.s3, b.clients.s3)
    order("GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration").attach(
        a.clients.s3, b.clients.s3
    )


def sids(world: World) -> set[str]:
    return {s["Sid"] for s in (world.policy(BUCKET) or {}).get("Statement", [])}


def rule_ids(world: World) -> set[str]:
    config = world.notifications(BUCKET)
    return {r["Id"] for r in config.get("TopicConfigurations", [])}


def test_two_creates_racing_on_one_bucket_both_keep_their_statements_and_rules(
    world: World, stacks: tuple[Stack, Stack]
) -> None:
    a, b = stacks
    interleave(a, b)

    together(a.create, b.create)

    assert {f"AlbLogDelivery{a.gen()}", f"AlbLogDelivery{b.gen()}", "Theirs"} <= sids(world)
    assert rule_ids(world) == {rule_id(a.gen()), rule_id(b.gen()), "theirs"}


def test_two_deletes_racing_on_one_bucket_both_remove_theirs_and_keep_the_rest(
    world: World, stacks: tuple[Stack, Stack]
) -> None:
    a, b = stacks
    a.create()
    b.create()
    interleave(a, b)

    together(a.delete, b.delete)

    assert sids(world) == {"Theirs"}
    assert world.policy(BUCKET) == {"Version": "2012-10-17", "Statement": [THEIRS]}
    assert rule_ids(world) == {"theirs"}


def test_a_create_whose_change_is_overwritten_after_its_read_back_merges_it_again_before_answering(
    world: World, stacks: tuple[Stack, Stack]
) -> None:
    a, b = stacks
    interleave(a, b, LateOverwrite)

    together(a.create, b.create)

    assert {f"AlbLogDelivery{a.gen()}", f"AlbLogDelivery{b.gen()}", "Theirs"} <= sids(world)
    assert rule_ids(world) == {rule_id(a.gen()), rule_id(b.gen()), "theirs"}


def test_a_delete_whose_removal_is_undone_after_its_read_back_removes_again_before_answering(
    world: World, stacks: tuple[Stack, Stack]
) -> None:
    a, b = stacks
    a.create()
    b.create()
    interleave(a, b, LateOverwrite)

    together(a.delete, b.delete)

    assert world.policy(BUCKET) == {"Version": "2012-10-17", "Statement": [THEIRS]}
    assert rule_ids(world) == {"theirs"}


def test_a_writer_that_keeps_undoing_our_change_fails_the_create_with_a_reason(
    resource: CustomResource, world: World, stacks: tuple[Stack, Stack]
) -> None:
    original = world.s3.get_bucket_policy(Bucket=BUCKET)["Policy"]

    def put_theirs_back(**_: Any) -> None:
        world.s3.put_bucket_policy(Bucket=BUCKET, Policy=original)

    resource.clients.s3.meta.events.register("after-call.s3.PutBucketPolicy", put_theirs_back)

    answer = resource.create(default_properties(world.alb_arn, world.forwarder_arn, BucketName=BUCKET))

    assert answer.status == "FAILED"
    assert f"the policy of bucket {BUCKET} kept changing" in answer.reason
    assert "another writer" in answer.reason and "PutBucketPolicy" in answer.reason
    assert "Every change this request made was undone" in answer.reason
    assert sids(world) == {"Theirs"}
