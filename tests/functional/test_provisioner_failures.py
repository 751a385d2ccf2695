"""An AWS error at any step of Create is undone, and the rollback Delete leaves no residue."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn import ACCOUNT, CustomResource, World, default_properties, snapshot

READS = ("Get", "List", "Describe", "Head")
ENDPOINT = "https://127.0.0.1:9/ingest"
READER = f"arn:aws:iam::{ACCOUNT}:role/log-vendor"

# Every change a Create makes, in order, for a new bucket with forwarder, endpoint and reader.
NEW_BUCKET_STEPS = [
    "s3.CreateBucket",
    "s3.PutBucketTagging",
    "s3.PutPublicAccessBlock",
    "s3.PutBucketEncryption",
    "s3.PutBucketLifecycleConfiguration",
    "s3.PutBucketPolicy",
    "sns.CreateTopic",
    "sns.SetTopicAttributes",
    "lambda.AddPermission",
    "sns.Subscribe",
    "sns.Subscribe",
    "s3.PutBucketNotificationConfiguration",
    "elbv2.AddTags",
    "elbv2.ModifyLoadBalancerAttributes",
]
# The same for a bucket that exists (with a policy and notification rules of its own).
EXISTING_BUCKET_STEPS = [
    "s3.PutBucketPolicy",
    "sns.CreateTopic",
    "sns.SetTopicAttributes",
    "lambda.AddPermission",
    "sns.Subscribe",
    "sns.Subscribe",
    "s3.PutBucketNotificationConfiguration",
    "elbv2.AddTags",
    "elbv2.ModifyLoadBalancerAttributes",
]


class Injector:
    """Counts the provisioner's mutating calls; raises an AWS error at the chosen ones."""

    def __init__(self, clients: Any) -> None:
        self.calls: list[str] = []
        self.fail_at: set[int] = set()
        self.fail_when: Callable[[str, int], bool] = lambda name, index: index in self.fail_at
        for service in (clients.elbv2, clients.s3, clients.sns, clients.lambda_):
            service.meta.events.register("before-call", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.endpoint_prefix.replace('elasticloadbalancing', 'elbv2')}.{model.name}"
        if model.name.startswith(READS):
            return
        self.calls.append(name)
        if self.fail_when(name, len(self.calls)):
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": f"injected failure of {model.name}"}},
                model.name,
            )


def new_bucket(world: World) -> dict[str, str]:
    return default_properties(
        world.alb_arn,
        world.forwarder_arn,
        SubscriptionEndpoint=ENDPOINT,
        ReaderPrincipalArn=READER,
        Prefix="alb",
    )


def existing_bucket(world: World) -> dict[str, str]:
    world.s3.create_bucket(Bucket="team-logs")
    world.s3.put_bucket_policy(
        Bucket="team-logs",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Theirs",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::team-logs/*",
                    }
                ],
            }
        ),
    )
    world.s3.put_bucket_notification_configuration(
        Bucket="team-logs",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "orders",
                    "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders",
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
                }
            ],
            "EventBridgeConfiguration": {},
        },
    )
    world.s3.create_bucket(Bucket="old-logs")
    world.set_access_logs(world.alb_arn, "old-logs", "before")
    return default_properties(
        world.alb_arn,
        world.forwarder_arn,
        BucketName="team-logs",
        Prefix="alb",
        SubscriptionEndpoint=ENDPOINT,
        ReaderPrincipalArn=READER,
    )


SCENARIOS = {
    "new bucket": (new_bucket, NEW_BUCKET_STEPS),
    "existing bucket": (existing_bucket, EXISTING_BUCKET_STEPS),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_step_list_is_what_create_really_does(
    scenario: str, resource: CustomResource, world: World
) -> None:
    build, steps = SCENARIOS[scenario]
    injector = Injector(resource.clients)
    answer = resource.create(build(world))
    assert answer.status == "SUCCESS", answer.reason
    assert injector.calls == steps


CASES = [(scenario, n) for scenario, (_, steps) in SCENARIOS.items() for n in range(1, len(steps) + 1)]


@pytest.mark.parametrize(
    ("scenario", "step"), CASES, ids=[f"{s}-{n}-{SCENARIOS[s][1][n - 1]}" for s, n in CASES]
)
def test_failure_at_each_step_is_undone_and_rollback_delete_leaves_no_residue(
    scenario: str, step: int, resource: CustomResource, world: World
) -> None:
    build, steps = SCENARIOS[scenario]
    properties = build(world)
    before = snapshot(world)
    injector = Injector(resource.clients)
    injector.fail_at = {step}

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    operation = steps[step - 1].split(".")[1]
    assert f"{operation} returned AccessDenied: injected failure of {operation}" in answer.reason
    assert "step '" in answer.reason
    assert "Every change this request made was undone" in answer.reason
    assert snapshot(world) == before, "the undo journal put everything back"

    rollback = resource.delete(answer.physical_id, properties)

    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == before


def test_when_the_undo_itself_fails_the_rollback_delete_finishes_the_cleanup(
    resource: CustomResource, world: World
) -> None:
    properties = new_bucket(world)
    before = snapshot(world)
    injector = Injector(resource.clients)
    # Fail the last step, then every undo of the topic, the bucket policy and the bucket.
    last = len(NEW_BUCKET_STEPS)
    injector.fail_when = lambda name, index: (
        index == last
        or (
            index > last
            and name in ("sns.DeleteTopic", "s3.PutBucketPolicy", "s3.DeleteBucketPolicy", "s3.DeleteBucket")
        )
    )

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    assert "Undo was incomplete" in answer.reason
    assert "the stack's rollback will retry the cleanup" in answer.reason
    assert snapshot(world) != before

    injector.fail_when = lambda name, index: False
    rollback = resource.delete(answer.physical_id, properties)

    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == before


def test_a_real_error_during_delete_fails_with_a_reason_and_a_retry_finishes(
    resource: CustomResource, world: World
) -> None:
    properties = new_bucket(world)
    before = snapshot(world)
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    injector = Injector(resource.clients)
    injector.fail_when = lambda name, index: name == "sns.DeleteTopic"

    failed = resource.delete(answer.physical_id, properties)

    assert failed.status == "FAILED"
    assert "delete the topic" in failed.reason and "AccessDenied" in failed.reason
    assert answer.data["BucketName"] in world.bucket_names(), "the bucket waits until everything else is gone"

    injector.fail_when = lambda name, index: False
    retried = resource.delete(answer.physical_id, properties)

    assert retried.status == "SUCCESS", retried.reason
    assert snapshot(world) == before


def deny_logging(times: int) -> Callable[..., None]:
    calls = {"n": 0}

    def hook(model: Any, **_: Any) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidConfigurationRequest",
                        "Message": "Access Denied for bucket: x. Please check S3bucket permission",
                    }
                },
                "ModifyLoadBalancerAttributes",
            )

    return hook


def test_enabling_logs_waits_for_a_fresh_bucket_policy_to_propagate(
    resource: CustomResource, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner import load_balancer

    sleeps: list[float] = []
    monkeypatch.setattr(load_balancer, "RETRY_SLEEP", sleeps.append)
    resource.clients.elbv2.meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyLoadBalancerAttributes", deny_logging(2)
    )

    answer = resource.create(new_bucket(world))

    assert answer.status == "SUCCESS", answer.reason
    assert sleeps == [2.0, 4.0]
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "true"


def test_a_bucket_elb_never_accepts_fails_after_bounded_retries_and_is_undone(
    resource: CustomResource, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner import load_balancer

    sleeps: list[float] = []
    monkeypatch.setattr(load_balancer, "RETRY_SLEEP", sleeps.append)
    properties = new_bucket(world)
    before = snapshot(world)
    resource.clients.elbv2.meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyLoadBalancerAttributes", deny_logging(6)
    )

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    assert "enable access logs on the load balancer" in answer.reason
    assert "Access Denied for bucket" in answer.reason
    assert len(sleeps) == 5 and sum(sleeps) <= 30
    assert snapshot(world) == before
