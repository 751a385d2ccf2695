"""One load balancer, two stacks: a second stack never takes the access logs away from the first, and a
Delete never points logging back at a bucket that is gone."""

from __future__ import annotations

import json
import logging

import pytest
from cfn import CustomResource, Stack, World, default_properties, snapshot

from provisioner.naming import LOG_OWNER_GEN_TAG_KEY, STACK_TAG_KEY, default_bucket_name
from provisioner.state import decode

ACCOUNT = "123456789012"
REGION = "us-east-1"


def props(world: World, **overrides: str) -> dict[str, str]:
    return default_properties(world.alb_arn, world.forwarder_arn, **overrides)


def another_stack(resource: CustomResource, name: str = "apilogs") -> CustomResource:
    """The same custom resource in a second stack of the same account."""
    return CustomResource(Stack(resource.receiver, name=name), resource.clients)


def claim_of(resource: CustomResource, physical_id: str) -> dict[str, str]:
    """The tags a resource puts on the load balancer whose access logs it manages."""
    record = decode(physical_id)
    assert record is not None
    return {STACK_TAG_KEY: resource.stack.stack_id, LOG_OWNER_GEN_TAG_KEY: record.gen}


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    out = []
    for record in caplog.records:
        try:
            parsed = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(parsed, dict) and "event" in parsed:
            out.append(parsed)
    return out


def test_a_second_stack_on_the_same_load_balancer_fails_before_changing_anything(
    resource: CustomResource, world: World
) -> None:
    first = resource.create(props(world, RetainBucket="false"))
    assert first.status == "SUCCESS", first.reason
    assert world.load_balancer_tags(world.alb_arn) == claim_of(resource, first.physical_id)
    world.s3.create_bucket(Bucket="team-logs")
    before = snapshot(world)
    second = another_stack(resource)
    second_props = props(world, BucketName="team-logs")

    answer = second.create(second_props)

    assert answer.status == "FAILED"
    assert "weblogs" in answer.reason, "the reason names the stack that manages the load balancer"
    assert "Delete stack weblogs" in answer.reason
    assert snapshot(world) == before, "nothing changed: no policy, rule, topic, or logging change"
    rollback = second.delete(answer.physical_id, second_props)
    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == before

    # The first stack is unharmed and still cleans up after itself.
    deleted = resource.delete(first.physical_id, props(world, RetainBucket="false"))
    assert deleted.status == "SUCCESS", deleted.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"
    assert world.load_balancer_tags(world.alb_arn) == {}


def test_once_the_first_stack_is_deleted_a_second_one_can_take_the_load_balancer(
    resource: CustomResource, world: World
) -> None:
    start = snapshot(world)
    first = resource.create(props(world, RetainBucket="false"))
    assert first.status == "SUCCESS", first.reason
    assert resource.delete(first.physical_id, props(world, RetainBucket="false")).status == "SUCCESS"
    assert snapshot(world) == start
    second = another_stack(resource)

    answer = second.create(props(world, RetainBucket="false"))

    assert answer.status == "SUCCESS", answer.reason
    assert answer.data["BucketName"] == default_bucket_name(ACCOUNT, REGION, second.stack.stack_id)
    assert world.load_balancer_tags(world.alb_arn) == claim_of(second, answer.physical_id)
    assert second.delete(answer.physical_id, props(world, RetainBucket="false")).status == "SUCCESS"
    assert snapshot(world) == start


def test_an_update_moving_the_bucket_keeps_the_load_balancer_in_the_stack(
    resource: CustomResource, world: World
) -> None:
    world.s3.create_bucket(Bucket="team-logs")
    start = snapshot(world)
    old = props(world)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, BucketName="team-logs")

    replaced = resource.update(created.physical_id, new, old)

    assert replaced.status == "SUCCESS", replaced.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs"
    assert world.load_balancer_tags(world.alb_arn) == claim_of(resource, replaced.physical_id)
    # CloudFormation then deletes the replaced resource: it leaves the new one's logging and claim alone.
    assert resource.delete(created.physical_id, old).status == "SUCCESS"
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs"
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "true"
    assert world.load_balancer_tags(world.alb_arn) == claim_of(resource, replaced.physical_id)
    assert resource.delete(replaced.physical_id, new).status == "SUCCESS"
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"
    assert world.load_balancer_tags(world.alb_arn) == {}
    assert snapshot(world)["load_balancers"] == start["load_balancers"]


def test_a_replacement_onto_the_same_bucket_survives_the_old_resources_delete(
    resource: CustomResource, world: World
) -> None:
    """Naming the default bucket explicitly replaces the resource with one using the very same bucket."""
    old = props(world)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, BucketName=created.data["BucketName"])
    replaced = resource.update(created.physical_id, new, old)
    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.physical_id != created.physical_id

    assert resource.delete(created.physical_id, old).status == "SUCCESS"

    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": created.data["BucketName"],
        "access_logs.s3.prefix": "",
    }, "the replaced resource's Delete does not turn off the logging its successor uses"
    assert world.load_balancer_tags(world.alb_arn) == claim_of(resource, replaced.physical_id)


def test_delete_after_someone_repointed_logging_leaves_it_and_drops_the_claim(
    resource: CustomResource, world: World
) -> None:
    properties = props(world)
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    world.s3.create_bucket(Bucket="somewhere-else")
    world.set_access_logs(world.alb_arn, "somewhere-else", "mine")

    assert resource.delete(answer.physical_id, properties).status == "SUCCESS"

    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "somewhere-else",
        "access_logs.s3.prefix": "mine",
    }
    assert world.load_balancer_tags(world.alb_arn) == {}


def take_over_a_stale_claim(resource: CustomResource, world: World) -> tuple[CustomResource, str, str]:
    """Stack weblogs logs to its bucket, someone repoints the load balancer, then stack apilogs is created.

    Returns the second resource, its physical id and the first resource's physical id.
    """
    first = resource.create(props(world))
    assert first.status == "SUCCESS", first.reason
    world.s3.create_bucket(Bucket="somewhere-else")
    world.set_access_logs(world.alb_arn, "somewhere-else", "mine")
    world.s3.create_bucket(Bucket="team-logs")
    second = another_stack(resource)
    answer = second.create(props(world, BucketName="team-logs"))
    assert answer.status == "SUCCESS", answer.reason
    return second, answer.physical_id, first.physical_id


def test_a_claim_whose_logging_was_repointed_by_hand_does_not_block_a_new_stack(
    resource: CustomResource, world: World
) -> None:
    second, second_id, first_id = take_over_a_stale_claim(resource, world)
    assert world.load_balancer_tags(world.alb_arn) == claim_of(second, second_id)

    assert resource.delete(first_id, props(world)).status == "SUCCESS"
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs", "not the first's to undo"
    assert world.load_balancer_tags(world.alb_arn) == claim_of(second, second_id)

    assert second.delete(second_id, props(world, BucketName="team-logs")).status == "SUCCESS"
    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "somewhere-else",
        "access_logs.s3.prefix": "mine",
    }
    assert world.load_balancer_tags(world.alb_arn) == {}


def test_an_update_that_would_take_logging_back_from_another_stack_fails(
    resource: CustomResource, world: World
) -> None:
    _, _, first_id = take_over_a_stale_claim(resource, world)
    before = snapshot(world)
    old = props(world)
    new = dict(old, LogRetentionDays="60")

    answer = resource.update(first_id, new, old)

    assert answer.status == "FAILED"
    assert "apilogs" in answer.reason
    assert snapshot(world) == before


def test_delete_turns_logging_off_when_the_recorded_bucket_no_longer_exists(
    resource: CustomResource, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.s3.create_bucket(Bucket="old-logs")
    world.set_access_logs(world.alb_arn, "old-logs", "before")
    world.s3.create_bucket(Bucket="team-logs")
    properties = props(world, BucketName="team-logs")
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    world.s3.delete_bucket(Bucket="old-logs")

    with caplog.at_level(logging.INFO):
        deleted = resource.delete(answer.physical_id, properties)

    assert deleted.status == "SUCCESS", deleted.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"
    assert world.load_balancer_tags(world.alb_arn) == {}
    turned_off = [e for e in events(caplog) if e["event"] == "previous_access_log_bucket_unusable"]
    assert turned_off and turned_off[0]["bucket"] == "old-logs"
    assert "no longer exists" in str(turned_off[0]["reason"])


def test_deleting_two_stacks_that_shared_a_load_balancer_never_points_it_at_a_deleted_bucket(
    resource: CustomResource, world: World
) -> None:
    """A second stack created by a version that did not tag load balancers took logging over silently."""
    first = resource.create(props(world, RetainBucket="false"))
    assert first.status == "SUCCESS", first.reason
    first_bucket = first.data["BucketName"]
    world.elbv2.remove_tags(
        ResourceArns=[world.alb_arn], TagKeys=list(world.load_balancer_tags(world.alb_arn))
    )
    world.s3.create_bucket(Bucket="team-logs")
    second = another_stack(resource)
    taken = second.create(props(world, BucketName="team-logs"))
    assert taken.status == "SUCCESS", taken.reason

    assert resource.delete(first.physical_id, props(world, RetainBucket="false")).status == "SUCCESS"
    assert first_bucket not in world.bucket_names()
    assert second.delete(taken.physical_id, props(world, BucketName="team-logs")).status == "SUCCESS"

    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"


def test_delete_never_restores_logging_to_the_bucket_it_deletes(
    resource: CustomResource, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The load balancer already logged to this stack's kept bucket when the resource was created again."""
    kept = resource.create(props(world, RetainBucket="true"))
    assert kept.status == "SUCCESS", kept.reason
    bucket = kept.data["BucketName"]
    assert resource.delete(kept.physical_id, props(world, RetainBucket="true")).status == "SUCCESS"
    world.set_access_logs(world.alb_arn, bucket, "")
    again = resource.create(props(world, RetainBucket="false"))
    assert again.status == "SUCCESS", again.reason
    assert again.data["BucketName"] == bucket

    with caplog.at_level(logging.INFO):
        deleted = resource.delete(again.physical_id, props(world, RetainBucket="false"))

    assert deleted.status == "SUCCESS", deleted.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"
    turned_off = [e for e in events(caplog) if e["event"] == "previous_access_log_bucket_unusable"]
    assert turned_off and "this stack deletes it" in str(turned_off[0]["reason"])
