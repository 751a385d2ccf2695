"""LogGroupNames: one subscription filter and invoke permission per log group, through the whole lifecycle."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn import ACCOUNT, REGION, CustomResource, World, default_properties, snapshot

from provisioner import subscriptions

API = "/aws/lambda/api"
WEB = "/ecs/web#1"
JOBS = "/batch/jobs"


@pytest.fixture(autouse=True)
def filters_update_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """PutSubscriptionFilter with an existing filter's name updates it, at two filters too (moto counts it).

    AWS documents that calling it with an existing filter name replaces that filter's settings.
    """
    from moto.logs.models import LogGroup

    counted = LogGroup.put_subscription_filter

    def put(self: Any, filter_name: str, filter_pattern: str, destination_arn: str, role_arn: str) -> None:
        if filter_name in self.subscription_filters:
            self.subscription_filters[filter_name].update(filter_pattern, destination_arn, role_arn)
            return
        counted(self, filter_name, filter_pattern, destination_arn, role_arn)

    monkeypatch.setattr(LogGroup, "put_subscription_filter", put)


@pytest.fixture
def log_groups(world: World) -> list[str]:
    """Three log groups; WEB already carries a user's filter, which must stay as it is."""
    for name in (API, WEB, JOBS):
        world.logs.create_log_group(logGroupName=name)
    world.logs.put_subscription_filter(
        logGroupName=WEB, filterName="team-archive", filterPattern="", destinationArn=world.forwarder_arn
    )
    return [API, WEB, JOBS]


def props(world: World, names: list[str], pattern: str = "") -> dict[str, str]:
    return default_properties(
        world.alb_arn, world.forwarder_arn, LogGroupNames=",".join(names), LogGroupFilterPattern=pattern
    )


def our_filters(world: World) -> dict[str, tuple[str, str]]:
    """Log group -> (destination, pattern) of the filters this project put."""
    return {
        group: (f["destinationArn"], f["filterPattern"])
        for group, filters in world.subscription_filters().items()
        for f in filters
        if f["filterName"].startswith("alb-log-onboarding-")
    }


def log_grants(world: World) -> set[str]:
    """Source ARNs of the forwarder's statements for logs.amazonaws.com."""
    out = set()
    for st in world.lambda_policy():
        if st["Principal"] == {"Service": "logs.amazonaws.com"}:
            assert st["Condition"]["StringEquals"]["AWS:SourceAccount"] == ACCOUNT
            out.add(st["Condition"]["ArnLike"]["AWS:SourceArn"])
    return out


def arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"


def test_create_subscribes_each_log_group_and_delete_restores_the_account(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    start = snapshot(world)
    wanted = props(world, [API, WEB], pattern="ERROR")

    created = resource.create(wanted)

    assert created.status == "SUCCESS", created.reason
    assert our_filters(world) == {API: (world.forwarder_arn, "ERROR"), WEB: (world.forwarder_arn, "ERROR")}
    assert log_grants(world) == {arn(API), arn(WEB)}
    assert len(created.physical_id.encode()) < 1024

    deleted = resource.delete(created.physical_id, wanted)

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start, "only our filters and statements go; the team's filter stays"


def test_update_adds_and_removes_log_groups_in_place(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    start = snapshot(world)
    old = props(world, [API, WEB])
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = props(world, [WEB, JOBS], pattern='{ $.level = "error" }')

    updated = resource.update(created.physical_id, new, old)

    assert updated.status == "SUCCESS", updated.reason
    assert updated.physical_id == created.physical_id, "changing the log groups is an in-place update"
    pattern = '{ $.level = "error" }'
    assert our_filters(world) == {WEB: (world.forwarder_arn, pattern), JOBS: (world.forwarder_arn, pattern)}
    assert log_grants(world) == {arn(WEB), arn(JOBS)}

    emptied = resource.update(created.physical_id, props(world, []), new)

    assert emptied.status == "SUCCESS", emptied.reason
    assert our_filters(world) == {}
    assert log_grants(world) == set()

    deleted = resource.delete(created.physical_id, props(world, []))
    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start


def test_a_missing_log_group_fails_before_any_change_and_the_rollback_delete_succeeds(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    start = snapshot(world)
    wanted = props(world, [API, "/aws/lambda/gone"])

    created = resource.create(wanted)

    assert created.status == "FAILED"
    assert "log group /aws/lambda/gone does not exist" in created.reason
    assert f"account {ACCOUNT} region {REGION}" in created.reason
    assert snapshot(world) == start, "validation runs before any change"
    deleted = resource.delete(created.physical_id, wanted)
    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start


def test_a_log_group_with_two_filters_already_is_refused_with_their_names(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    world.logs.put_subscription_filter(
        logGroupName=WEB, filterName="security-siem", filterPattern="", destinationArn=world.forwarder_arn
    )
    start = snapshot(world)

    created = resource.create(props(world, [API, WEB]))

    assert created.status == "FAILED"
    assert "log group /ecs/web#1 already has 2 subscription filters (" in created.reason
    assert "security-siem" in created.reason and "team-archive" in created.reason
    assert (
        "delete one of them" in created.reason and "remove the log group from LogGroupNames" in created.reason
    )
    assert snapshot(world) == start


def test_a_failure_after_the_filters_undoes_them_and_delete_after_the_failed_create_succeeds(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    start = snapshot(world)
    wanted = props(world, [API, WEB])

    def refuse_second(params: dict[str, Any], **_: Any) -> None:
        if params["logGroupName"] == WEB:
            raise ClientError(
                {"Error": {"Code": "OperationAbortedException", "Message": "conflicting operation"}},
                "PutSubscriptionFilter",
            )

    resource.clients.logs.meta.events.register(
        "provide-client-params.logs.PutSubscriptionFilter", refuse_second
    )

    created = resource.create(wanted)

    assert created.status == "FAILED"
    assert "conflicting operation" in created.reason
    assert "Every change this request made was undone" in created.reason
    assert snapshot(world) == start
    deleted = resource.delete(created.physical_id, wanted)
    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start


def test_delete_succeeds_when_the_log_groups_are_already_gone(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    wanted = props(world, [API, WEB])
    created = resource.create(wanted)
    assert created.status == "SUCCESS", created.reason
    world.logs.delete_log_group(logGroupName=API)
    world.logs.delete_subscription_filter(logGroupName=WEB, filterName=f"alb-log-onboarding-{gen(created)}")

    deleted = resource.delete(created.physical_id, wanted)

    assert deleted.status == "SUCCESS", deleted.reason
    assert our_filters(world) == {}
    assert log_grants(world) == set()


def test_the_filter_is_retried_while_the_new_invoke_permission_propagates(
    resource: CustomResource, world: World, log_groups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(subscriptions, "RETRY_SLEEP", waits.append)
    refusals = iter(range(2))

    def not_yet(**_: Any) -> None:
        if next(refusals, None) is not None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidParameterException",
                        "Message": "Could not execute the lambda function. Make sure you have given "
                        "CloudWatch Logs permission to execute your function.",
                    }
                },
                "PutSubscriptionFilter",
            )

    resource.clients.logs.meta.events.register("provide-client-params.logs.PutSubscriptionFilter", not_yet)

    created = resource.create(props(world, [API]))

    assert created.status == "SUCCESS", created.reason
    assert waits == [2.0, 4.0]
    assert our_filters(world) == {API: (world.forwarder_arn, "")}


def test_log_groups_need_a_forwarder_and_valid_distinct_names(resource: CustomResource, world: World) -> None:
    start = snapshot(world)
    wanted = default_properties(world.alb_arn, "", LogGroupNames=f"{API},{WEB},{WEB}, {JOBS},bad:name")

    created = resource.create(wanted)

    assert created.status == "FAILED"
    for part in ("needs a forwarder", "bad:name", "no spaces", "/ecs/web#1 more than once"):
        assert part in created.reason, part
    assert snapshot(world) == start


def gen(answer: Any) -> str:
    """The generation our names carry, from the physical id."""
    from provisioner.state import decode

    record = decode(answer.physical_id)
    assert record is not None
    return record.gen


def test_an_update_adding_a_full_log_group_fails_before_any_change(
    resource: CustomResource, world: World, log_groups: list[str]
) -> None:
    old = props(world, [API])
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    world.logs.put_subscription_filter(
        logGroupName=WEB, filterName="security-siem", filterPattern="", destinationArn=world.forwarder_arn
    )
    before = snapshot(world)

    updated = resource.update(created.physical_id, props(world, [JOBS, WEB]), old)

    assert updated.status == "FAILED"
    assert "log group /ecs/web#1 already has 2 subscription filters" in updated.reason
    assert snapshot(world) == before, "API keeps its filter, JOBS gets none"
