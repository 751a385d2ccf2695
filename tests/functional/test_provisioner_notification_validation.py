"""S3 validates every destination of the notification configuration on each write: one broken rule of
someone else must not block our undo and delete, and must be named when it blocks our add."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn import ACCOUNT, REGION, CustomResource, World, client, default_properties, snapshot
from s3_destinations import QUEUE_GONE, TOPIC_DENIED, DestinationValidation

from provisioner.naming import rule_id
from provisioner.state import decode

BUCKET = "team-logs"
QUEUE = "orders"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"


def shared_bucket(world: World, *, queue_exists: bool) -> dict[str, str]:
    """A bucket with another team's queue rule; its queue exists or is already gone."""
    world.s3.create_bucket(Bucket=BUCKET)
    if queue_exists:
        client("sqs").create_queue(QueueName=QUEUE)
    world.s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "orders",
                    "QueueArn": QUEUE_ARN,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
                }
            ]
        },
    )
    return default_properties(world.alb_arn, world.forwarder_arn, BucketName=BUCKET, Prefix="alb")


def delete_queue() -> None:
    sqs = client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"])


@pytest.fixture
def validation(resource: CustomResource, world: World) -> DestinationValidation:
    return DestinationValidation(resource.clients.s3, world.sns, client("sqs"))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from provisioner import notifications

    recorded: list[float] = []
    monkeypatch.setattr(notifications, "RETRY_SLEEP", recorded.append, raising=False)
    return recorded


def gen_of(answer: Any) -> str:
    record = decode(answer.physical_id)
    assert record is not None
    return record.gen


def rule_ids(world: World) -> list[str]:
    config = world.notifications(BUCKET)
    return [r["Id"] for key in ("TopicConfigurations", "QueueConfigurations") for r in config.get(key, [])]


def test_a_broken_rule_of_someone_else_fails_our_add_with_a_reason_naming_it(
    resource: CustomResource, world: World, validation: DestinationValidation
) -> None:
    properties = shared_bucket(world, queue_exists=False)
    before = snapshot(world)

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    assert f"rule 'orders' sending to queue {QUEUE_ARN} ({QUEUE_GONE})" in answer.reason
    assert "restore that destination or remove the rule" in answer.reason
    assert "Every change this request made was undone" in answer.reason
    assert validation.writes == [False], "the add is validated, and nothing else was written"
    assert snapshot(world) == before

    rollback = resource.delete(answer.physical_id, properties)

    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == before


def test_the_undo_removes_our_rule_although_another_rule_broke_meanwhile(
    resource: CustomResource, world: World, validation: DestinationValidation
) -> None:
    properties = shared_bucket(world, queue_exists=True)
    before = snapshot(world)

    def break_queue_then_fail(**_: Any) -> None:
        delete_queue()
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "injected"}}, "ModifyLoadBalancerAttributes"
        )

    resource.clients.elbv2.meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyLoadBalancerAttributes", break_queue_then_fail
    )

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    assert "Every change this request made was undone" in answer.reason, answer.reason
    assert validation.writes == [False, True], "the add was validated, the undo skipped validation"
    assert snapshot(world) == before


def test_delete_removes_our_rule_although_another_rule_broke_since_create(
    resource: CustomResource, world: World, validation: DestinationValidation
) -> None:
    properties = shared_bucket(world, queue_exists=True)
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    delete_queue()

    deleted = resource.delete(answer.physical_id, properties)

    assert deleted.status == "SUCCESS", deleted.reason
    assert rule_ids(world) == ["orders"], "our rule is gone, the other team's rule is kept as it was"
    assert validation.writes == [False, True]


def test_our_topic_refused_while_its_policy_propagates_is_retried(
    resource: CustomResource, world: World, validation: DestinationValidation, sleeps: list[float]
) -> None:
    properties = shared_bucket(world, queue_exists=True)
    validation.not_yet_visible["-alb-logs-"] = 1

    answer = resource.create(properties)

    assert answer.status == "SUCCESS", answer.reason
    assert sleeps == [2.0]
    assert validation.writes == [False, False]
    assert sorted(rule_ids(world)) == sorted(["orders", rule_id(gen_of(answer))])


def test_our_topic_refused_for_good_fails_after_bounded_retries_and_says_so(
    resource: CustomResource, world: World, validation: DestinationValidation, sleeps: list[float]
) -> None:
    properties = shared_bucket(world, queue_exists=True)
    validation.not_yet_visible["-alb-logs-"] = 99
    before = snapshot(world)

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    assert "this stack's rule 'alb-log-onboarding-" in answer.reason
    assert TOPIC_DENIED in answer.reason
    assert f"in {len(sleeps) + 1} attempts over {sum(sleeps):.0f} s" in answer.reason
    assert 3 <= len(sleeps) <= 5 and sum(sleeps) <= 30
    assert "Every change this request made was undone" in answer.reason
    assert snapshot(world) == before
