"""Right after CloudFormation changes the provisioner's own role, IAM may deny calls for a while.

Create and Update retry denied calls for a bounded time and say so if the denial persists; Delete does
not wait. The denials are answered as IAM answers them (HTTP 403 with each service's error code), before
the request reaches moto, so a denied call changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from cfn import ACCOUNT, CustomResource, World, default_properties, snapshot
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

ALWAYS = -1
ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/weblogs-ProvisionerRole-1A2B3C/weblogs-Provisioner"


def denial(service: str, action: str) -> tuple[int, dict[str, str], bytes]:
    """An access-denied answer shaped as each service sends it."""
    message = (
        f"User: {ROLE} is not authorized to perform: {action} because no identity-based policy allows it"
    )
    if service == "s3":
        body = f"<Error><Code>AccessDenied</Code><Message>{message}</Message><RequestId>1</RequestId></Error>"
        return 403, {"Content-Type": "application/xml"}, body.encode()
    if service == "lambda":
        return (
            403,
            {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"},
            json.dumps({"Message": message}).encode(),
        )
    code = "AuthorizationError" if service == "sns" else "AccessDenied"
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>1</RequestId></ErrorResponse>"
    )
    return 403, {"Content-Type": "text/xml"}, body.encode()


class Iam:
    """Denies chosen operations a number of times (or always), in front of moto."""

    def __init__(self, clients: Any) -> None:
        self.left: dict[str, int] = {}
        self.actions: dict[str, str] = {}
        self.denied: list[str] = []
        for service in (clients.elbv2, clients.s3, clients.sns, clients.lambda_):
            service.meta.events.unregister("before-send", botocore_stubber)
            service.meta.events.register("before-send", self._before_send)

    def deny(self, operation: str, action: str, times: int = ALWAYS) -> None:
        self.left[operation] = times
        self.actions[operation] = action

    def _before_send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        left = self.left.get(operation, 0)
        if left == 0:
            return botocore_stubber(event_name, request, **kwargs)
        if left > 0:
            self.left[operation] = left - 1
        self.denied.append(operation)
        status, headers, body = denial(service, self.actions[operation])
        return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


class Clock:
    """Fake time for the retry waits: sleeping advances it, nothing really sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    from provisioner import clients

    fake = Clock()
    monkeypatch.setattr(clients, "CLOCK", fake)
    monkeypatch.setattr(clients, "RETRY_SLEEP", fake.sleep)
    yield fake


@pytest.fixture
def iam(resource: CustomResource) -> Iam:
    return Iam(resource.clients)


def test_update_retries_calls_denied_while_the_role_change_propagates(
    resource: CustomResource, world: World, iam: Iam, clock: Clock
) -> None:
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb/a")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, Prefix="alb/b")
    iam.deny("DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers", times=3)
    iam.deny("PutBucketPolicy", "s3:PutBucketPolicy", times=2)
    iam.deny("AddPermission", "lambda:AddPermission", times=1)
    iam.deny("SetTopicAttributes", "sns:SetTopicAttributes", times=1)

    updated = resource.update(created.physical_id, new, old)

    assert updated.status == "SUCCESS", updated.reason
    assert iam.denied == [
        "DescribeLoadBalancers",
        "DescribeLoadBalancers",
        "DescribeLoadBalancers",
        "PutBucketPolicy",
        "PutBucketPolicy",
        "SetTopicAttributes",
        "AddPermission",
    ]
    assert clock.sleeps == [1.0, 2.0, 4.0, 1.0, 2.0, 1.0, 1.0]
    assert world.access_logs(world.alb_arn)["access_logs.s3.prefix"] == "alb/b"


def test_create_retries_its_first_calls_right_after_the_role_was_created(
    resource: CustomResource, world: World, iam: Iam, clock: Clock
) -> None:
    iam.deny("DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers", times=2)
    iam.deny("CreateBucket", "s3:CreateBucket", times=1)

    created = resource.create(default_properties(world.alb_arn, world.forwarder_arn))

    assert created.status == "SUCCESS", created.reason
    assert clock.sleeps == [1.0, 2.0, 1.0]
    assert created.data["BucketName"] in world.bucket_names()


def test_a_call_still_denied_after_retrying_fails_with_a_reason_that_says_so(
    resource: CustomResource, world: World, iam: Iam, clock: Clock
) -> None:
    from provisioner.clients import IAM_PROPAGATION_SECONDS

    before = snapshot(world)
    iam.deny("CreateBucket", "s3:CreateBucket")

    answer = resource.create(default_properties(world.alb_arn, world.forwarder_arn))

    assert answer.status == "FAILED"
    assert "step 'create the bucket' failed: CreateBucket returned AccessDenied" in answer.reason
    seconds = round(sum(clock.sleeps))
    assert seconds == IAM_PROPAGATION_SECONDS
    assert 30 <= seconds <= 60
    assert (
        f"still AccessDenied after retrying for {seconds} s; IAM changes to the provisioner role may not "
        f"have propagated, or the role lacks s3:CreateBucket"
    ) in answer.reason
    assert snapshot(world) == before


def test_retrying_stops_in_time_for_the_undo_and_the_answer(
    resource: CustomResource, world: World, iam: Iam, clock: Clock
) -> None:
    from provisioner.handler import STEP_RESERVE_SECONDS

    iam.deny("DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers")

    answer = resource.send(resource.stack.event("Create", default_properties(world.alb_arn, "")), seconds=40)

    assert answer.status == "FAILED"
    assert sum(clock.sleeps) <= 40 - STEP_RESERVE_SECONDS
    assert "still AccessDenied after retrying for" in answer.reason


def test_delete_does_not_wait_for_denied_calls(
    resource: CustomResource, world: World, iam: Iam, clock: Clock
) -> None:
    props = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(props)
    assert created.status == "SUCCESS", created.reason
    iam.deny("DeleteTopic", "sns:DeleteTopic")

    deleted = resource.delete(created.physical_id, props)

    assert deleted.status == "FAILED"
    assert "DeleteTopic returned AuthorizationError" in deleted.reason
    assert "retrying" not in deleted.reason
    assert clock.sleeps == []
