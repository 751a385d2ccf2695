"""Update: in place for everything but the load balancer and the bucket; replacement and rollback work."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from cfn import ACCOUNT, CustomResource, World, client, default_properties, snapshot

ENDPOINT_A = "https://127.0.0.1:9/a"
ENDPOINT_B = "https://127.0.0.1:9/b"


def rule_prefix(world: World, bucket: str) -> list[str]:
    prefixes = []
    for rule in world.notifications(bucket).get("TopicConfigurations", []):
        values = {r["Name"].lower(): r["Value"] for r in rule["Filter"]["Key"]["FilterRules"]}
        prefixes.append(values["prefix"])
    return prefixes


def delivery_resources(world: World, bucket: str) -> set[str]:
    policy = world.policy(bucket) or {}
    return {s["Resource"] for s in policy.get("Statement", []) if s["Sid"].startswith("AlbLogDelivery")}


def second_function(world: World) -> str:
    role = client("iam").get_role(RoleName="forwarder-role")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return str(
        world.lambda_.create_function(
            FunctionName="weblogs-Forwarder2",
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    )


def function_policy(world: World, arn: str) -> list[dict[str, Any]]:
    import json

    from botocore.exceptions import ClientError

    try:
        return list(json.loads(world.lambda_.get_policy(FunctionName=arn)["Policy"])["Statement"])
    except ClientError:
        return []


def test_in_place_prefix_change_keeps_the_id_and_moves_everything(
    resource: CustomResource, world: World
) -> None:
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb/a")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    bucket = created.data["BucketName"]
    new = dict(old, Prefix="alb/b")

    updated = resource.update(created.physical_id, new, old)

    assert updated.status == "SUCCESS", updated.reason
    assert updated.physical_id == created.physical_id, "an in-place update keeps the physical id"
    assert updated.data == dict(created.data, Prefix="alb/b")
    assert rule_prefix(world, bucket) == [f"alb/b/AWSLogs/{ACCOUNT}/"]
    assert delivery_resources(world, bucket) == {f"arn:aws:s3:::{bucket}/alb/b/AWSLogs/{ACCOUNT}/*"}
    assert world.access_logs(world.alb_arn)["access_logs.s3.prefix"] == "alb/b"

    deleted = resource.delete(created.physical_id, new)

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start


def test_in_place_update_of_endpoint_reader_retention_and_forwarder(
    resource: CustomResource, world: World
) -> None:
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn, SubscriptionEndpoint=ENDPOINT_A)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    topic = created.data["TopicArn"]
    bucket = created.data["BucketName"]
    other = second_function(world)
    reader = f"arn:aws:iam::{ACCOUNT}:role/vendor"
    new = dict(
        old,
        SubscriptionEndpoint=ENDPOINT_B,
        ForwarderFunctionArn=other,
        ReaderPrincipalArn=reader,
        LogRetentionDays="7",
    )

    updated = resource.update(created.physical_id, new, old)

    assert updated.status == "SUCCESS", updated.reason
    assert updated.physical_id == created.physical_id
    assert {(p, e) for t, p, e in world.subscriptions() if t == topic} == {
        ("lambda", other),
        ("https", ENDPOINT_B),
    }
    assert function_policy(world, world.forwarder_arn) == []
    assert len(function_policy(world, other)) == 1
    assert {
        s["Principal"]["AWS"] for s in world.policy(bucket)["Statement"] if s["Sid"].startswith("AlbLogRead")
    } == {reader}
    assert world.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"]["Days"] == 7

    # And back (what CloudFormation's update rollback sends: old and new swapped).
    rolled_back = resource.update(created.physical_id, old, new)

    assert rolled_back.status == "SUCCESS", rolled_back.reason
    assert {(p, e) for t, p, e in world.subscriptions() if t == topic} == {
        ("lambda", world.forwarder_arn),
        ("https", ENDPOINT_A),
    }
    assert function_policy(world, other) == []
    assert not [s for s in world.policy(bucket)["Statement"] if s["Sid"].startswith("AlbLogRead")]

    assert resource.delete(created.physical_id, old).status == "SUCCESS"
    world.lambda_.delete_function(FunctionName=other)
    assert snapshot(world) == start


def test_failed_in_place_update_then_rollback_restores_the_state(
    resource: CustomResource, world: World
) -> None:
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    after_create = snapshot(world)
    bad = dict(old, Prefix="AWSLogs")

    failed = resource.update(created.physical_id, bad, old)

    assert failed.status == "FAILED"
    assert failed.physical_id == created.physical_id, "a failed update answers with the current id"
    assert snapshot(world) == after_create

    rolled_back = resource.update(created.physical_id, old, bad)

    assert rolled_back.status == "SUCCESS", rolled_back.reason
    assert rolled_back.physical_id == created.physical_id
    assert snapshot(world) == after_create


def test_update_rollback_of_a_successful_in_place_update(resource: CustomResource, world: World) -> None:
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    after_create = snapshot(world)
    new = dict(old, Prefix="web", SubscriptionEndpoint=ENDPOINT_A, LogRetentionDays="90")
    assert resource.update(created.physical_id, new, old).status == "SUCCESS"
    assert snapshot(world) != after_create

    rolled_back = resource.update(created.physical_id, old, new)

    assert rolled_back.status == "SUCCESS", rolled_back.reason
    assert snapshot(world) == after_create


def test_replacement_with_a_new_load_balancer(resource: CustomResource, world: World) -> None:
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, LoadBalancerArn=world.alb2_arn)

    replaced = resource.update(created.physical_id, new, old)

    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.physical_id != created.physical_id, (
        "a new physical id tells CloudFormation to delete the old"
    )
    assert replaced.data["BucketName"] == created.data["BucketName"]
    assert replaced.data["TopicArn"] != created.data["TopicArn"]
    assert world.access_logs(world.alb2_arn)["access_logs.s3.enabled"] == "true"

    # CloudFormation's cleanup: Delete of the old id with the old properties.
    cleanup = resource.delete(created.physical_id, old)

    assert cleanup.status == "SUCCESS", cleanup.reason
    assert world.access_logs(world.alb_arn) == start["load_balancers"][world.alb_arn]
    assert world.access_logs(world.alb2_arn)["access_logs.s3.enabled"] == "true"
    assert created.data["BucketName"] in world.bucket_names(), (
        "the shared bucket stays while the new one uses it"
    )
    assert world.topics() == [replaced.data["TopicArn"]]
    assert rule_prefix(world, replaced.data["BucketName"]) == [f"AWSLogs/{ACCOUNT}/"]

    deleted = resource.delete(replaced.physical_id, new)

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == start


def test_replacement_with_a_new_bucket_on_the_same_load_balancer(
    resource: CustomResource, world: World
) -> None:
    world.s3.create_bucket(Bucket="old-logs")
    world.set_access_logs(world.alb_arn, "old-logs", "legacy")
    world.s3.create_bucket(Bucket="team-logs")
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    assert created.data["BucketName"] == "old-logs", "the ALB's own bucket is reused"
    new = dict(old, BucketName="team-logs")

    replaced = resource.update(created.physical_id, new, old)

    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.physical_id != created.physical_id
    assert replaced.data["BucketName"] == "team-logs"
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs"

    cleanup = resource.delete(created.physical_id, old)

    assert cleanup.status == "SUCCESS", cleanup.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs", (
        "the old Delete leaves it"
    )
    assert world.policy("old-logs") is None

    deleted = resource.delete(replaced.physical_id, new)

    assert deleted.status == "SUCCESS", deleted.reason
    # Logging goes back to what it was before the FIRST resource, not to the first resource's settings.
    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "old-logs",
        "access_logs.s3.prefix": "legacy",
    }
    assert snapshot(world) == start


def test_replacement_from_a_created_bucket_to_a_named_one_deletes_the_created_one(
    resource: CustomResource, world: World
) -> None:
    world.s3.create_bucket(Bucket="team-logs")
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, BucketName="team-logs")
    replaced = resource.update(created.physical_id, new, old)
    assert replaced.status == "SUCCESS", replaced.reason

    assert resource.delete(created.physical_id, old).status == "SUCCESS"

    assert created.data["BucketName"] not in world.bucket_names()
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs"
    assert resource.delete(replaced.physical_id, new).status == "SUCCESS"
    assert snapshot(world) == start


def test_rollback_of_a_load_balancer_replacement_returns_to_the_original(
    resource: CustomResource, world: World
) -> None:
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn, Prefix="alb")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    after_create = snapshot(world)
    new = dict(old, LoadBalancerArn=world.alb2_arn)
    replaced = resource.update(created.physical_id, new, old)
    assert replaced.status == "SUCCESS", replaced.reason

    # Another resource failed: CloudFormation rolls back with old and new swapped, on the new id.
    rolled_back = resource.update(replaced.physical_id, old, new)

    assert rolled_back.status == "SUCCESS", rolled_back.reason
    assert rolled_back.data == created.data
    # Then it deletes the replacement it no longer needs.
    assert resource.delete(replaced.physical_id, new).status == "SUCCESS"
    assert snapshot(world) == after_create

    assert resource.delete(rolled_back.physical_id, old).status == "SUCCESS"
    assert snapshot(world) == start


def test_rollback_of_a_bucket_replacement_returns_to_the_original(
    resource: CustomResource, world: World
) -> None:
    world.s3.create_bucket(Bucket="team-logs")
    start = snapshot(world)
    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    after_create = snapshot(world)
    new = dict(old, BucketName="team-logs")
    replaced = resource.update(created.physical_id, new, old)
    assert replaced.status == "SUCCESS", replaced.reason

    rolled_back = resource.update(replaced.physical_id, old, new)

    assert rolled_back.status == "SUCCESS", rolled_back.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == created.data["BucketName"]
    assert resource.delete(replaced.physical_id, new).status == "SUCCESS"
    assert snapshot(world) == after_create
    assert resource.delete(rolled_back.physical_id, old).status == "SUCCESS"
    assert snapshot(world) == start


def test_failed_replacement_answers_with_the_current_id_and_changes_nothing(
    resource: CustomResource, world: World
) -> None:
    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    after_create = snapshot(world)
    new = dict(old, LoadBalancerArn=world.nlb_arn)

    failed = resource.update(created.physical_id, new, old)

    assert failed.status == "FAILED"
    assert "network load balancer" in failed.reason
    assert failed.physical_id == created.physical_id
    assert snapshot(world) == after_create


def test_turning_the_forwarder_off_succeeds_when_its_policy_can_no_longer_be_edited(
    resource: CustomResource, world: World
) -> None:
    """The template drops the function and the role's RemovePermission grant in the same update."""
    from botocore.exceptions import ClientError

    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    topic = created.data["TopicArn"]
    new = dict(old, ForwarderFunctionArn="")

    def deny(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "RemovePermission"
        )

    resource.clients.lambda_.meta.events.register("before-call.lambda.RemovePermission", deny)
    updated = resource.update(created.physical_id, new, old)
    resource.clients.lambda_.meta.events.unregister("before-call.lambda.RemovePermission", deny)

    assert updated.status == "SUCCESS", updated.reason
    assert not [p for t, p, _ in world.subscriptions() if t == topic and p == "lambda"]


def test_a_denied_permission_removal_still_fails_while_the_forwarder_stays(
    resource: CustomResource, world: World
) -> None:
    from botocore.exceptions import ClientError

    old = default_properties(world.alb_arn, world.forwarder_arn)
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    new = dict(old, ForwarderFunctionArn=second_function(world))

    def deny(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "RemovePermission"
        )

    resource.clients.lambda_.meta.events.register("before-call.lambda.RemovePermission", deny)
    updated = resource.update(created.physical_id, new, old)
    resource.clients.lambda_.meta.events.unregister("before-call.lambda.RemovePermission", deny)

    assert updated.status == "FAILED"
    assert "AccessDenied" in updated.reason


@pytest.mark.parametrize(
    ("old_retain", "new_retain", "new_bucket"),
    [
        ("false", "false", "second-logs"),
        ("false", "false", ""),
        ("false", "true", "second-logs"),
        ("true", "false", ""),
    ],
)
def test_renaming_log_bucket_name_away_from_a_bucket_the_stack_would_delete_is_refused(
    resource: CustomResource, world: World, old_retain: str, new_retain: str, new_bucket: str
) -> None:
    """After the update the role may delete only the new name, so the old bucket would be left behind."""
    old = default_properties(
        world.alb_arn, world.forwarder_arn, BucketName="first-logs", RetainBucket=old_retain
    )
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    assert "first-logs" in world.bucket_names()
    after_create = snapshot(world)
    new = dict(old, BucketName=new_bucket, RetainBucket=new_retain)

    refused = resource.update(created.physical_id, new, old)

    assert refused.status == "FAILED"
    assert "first-logs" in refused.reason
    assert "Change RetainLogBucket to true first" in refused.reason
    assert refused.physical_id == created.physical_id
    assert snapshot(world) == after_create
    # CloudFormation's rollback: an in-place update back to the old properties.
    assert resource.update(created.physical_id, old, new).status == "SUCCESS"
    assert snapshot(world) == after_create


def test_renaming_log_bucket_name_after_setting_retain_keeps_the_old_bucket(
    resource: CustomResource, world: World
) -> None:
    """The way the refusal points to: keep the bucket first (in place), then rename."""
    old = default_properties(world.alb_arn, world.forwarder_arn, BucketName="first-logs")
    created = resource.create(old)
    assert created.status == "SUCCESS", created.reason
    keep = dict(old, RetainBucket="true")
    kept = resource.update(created.physical_id, keep, old)
    assert kept.status == "SUCCESS", kept.reason
    assert kept.physical_id == created.physical_id
    renamed = dict(keep, BucketName="second-logs")

    replaced = resource.update(created.physical_id, renamed, keep)

    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.data["BucketName"] == "second-logs"
    assert resource.delete(created.physical_id, keep).status == "SUCCESS"
    assert {"first-logs", "second-logs"} <= set(world.bucket_names())
    assert world.notifications("first-logs").get("TopicConfigurations") is None
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "second-logs"
