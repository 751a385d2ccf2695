"""Overlap rules S3 enforces, and read-merge-write that keeps every other rule exactly."""

from __future__ import annotations

import copy

import pytest

from provisioner import notifications

KEY_PREFIX = "alb/AWSLogs/123456789012/"


def rule(kind: str, rule_id: str, events: list[str], prefix: str = "", suffix: str = "") -> dict[str, object]:
    dest = {"topic": "TopicArn", "queue": "QueueArn", "lambda": "LambdaFunctionArn"}[kind]
    item: dict[str, object] = {
        "Id": rule_id,
        dest: f"arn:aws:{kind}:us-east-1:123456789012:{rule_id}",
        "Events": events,
    }
    filters = [{"Name": n, "Value": v} for n, v in (("Prefix", prefix), ("Suffix", suffix)) if v]
    if filters:
        item["Filter"] = {"Key": {"FilterRules": filters}}
    return item


def config_with(kind: str, item: dict[str, object]) -> dict[str, object]:
    key = {
        "topic": "TopicConfigurations",
        "queue": "QueueConfigurations",
        "lambda": "LambdaFunctionConfigurations",
    }
    return {key[kind]: [item]}


@pytest.mark.parametrize(
    ("events", "prefix", "suffix", "overlaps"),
    [
        (["s3:ObjectCreated:*"], "", "", True),
        (["s3:ObjectCreated:Put"], "", "", True),
        (["s3:ObjectCreated:CompleteMultipartUpload"], "alb/", "", True),
        (["s3:ObjectRemoved:*"], "", "", False),
        (["s3:ObjectRestore:Completed"], "", "", False),
        (["s3:ObjectCreated:*"], "images/", "", False),
        (["s3:ObjectCreated:*"], "alb/AWSLogs/123456789012/elasticloadbalancing/", "", True),
        (["s3:ObjectCreated:*"], "", ".gz", True),
        (["s3:ObjectCreated:*"], "", ".json", False),
        (["s3:ObjectCreated:*"], "alb/", ".log.gz", True),
        (["s3:ObjectRemoved:*", "s3:ObjectCreated:Post"], "a", "", True),
        (["s3:ObjectCreated:*"], "alb/AWSLogs/210987654321/", "", False),
    ],
)
@pytest.mark.parametrize("kind", ["topic", "queue", "lambda"])
def test_overlap(kind: str, events: list[str], prefix: str, suffix: str, overlaps: bool) -> None:
    config = config_with(kind, rule(kind, "theirs", events, prefix, suffix))

    found = notifications.find_conflicts(config, KEY_PREFIX, ignore_ids=())

    assert bool(found) is overlaps
    if overlaps:
        assert found[0].rule_id == "theirs"
        reason = notifications.conflict_reason(found, "logs", KEY_PREFIX)
        assert "'theirs'" in reason and "arn:aws:" in reason and "remove that rule" in reason


def test_our_own_rule_ids_are_not_conflicts() -> None:
    config = config_with("topic", rule("topic", "alb-log-onboarding-0a1b2c3d", ["s3:ObjectCreated:*"]))
    assert notifications.find_conflicts(config, KEY_PREFIX, ignore_ids=("alb-log-onboarding-0a1b2c3d",)) == []


def test_eventbridge_never_conflicts() -> None:
    assert notifications.find_conflicts({"EventBridgeConfiguration": {}}, KEY_PREFIX, ignore_ids=()) == []


def test_merge_and_remove_keep_everything_else_exactly() -> None:
    existing = {
        "TopicConfigurations": [rule("topic", "images", ["s3:ObjectCreated:*"], "images/")],
        "QueueConfigurations": [rule("queue", "orders", ["s3:ObjectCreated:Put"], "orders/")],
        "LambdaFunctionConfigurations": [rule("lambda", "thumbs", ["s3:ObjectCreated:*"], "img/", ".png")],
        "EventBridgeConfiguration": {},
    }
    pristine = copy.deepcopy(existing)
    ours = notifications.our_rule("alb-log-onboarding-0a1b2c3d", "arn:aws:sns:us-east-1:1:t", KEY_PREFIX)

    merged = notifications.merge(existing, ours, ())

    assert existing == pristine, "the input is not modified"
    assert merged["TopicConfigurations"] == [*pristine["TopicConfigurations"], ours]
    for key in ("QueueConfigurations", "LambdaFunctionConfigurations", "EventBridgeConfiguration"):
        assert merged[key] == pristine[key]
    assert notifications.merge(merged, ours, ()) == merged, "merging twice does not duplicate"
    assert notifications.remove(merged, {ours["Id"]}) == pristine


def test_merge_replaces_a_previous_generation_rule() -> None:
    old = notifications.our_rule("alb-log-onboarding-11111111", "arn:aws:sns:us-east-1:1:old", KEY_PREFIX)
    new = notifications.our_rule("alb-log-onboarding-22222222", "arn:aws:sns:us-east-1:1:new", KEY_PREFIX)

    merged = notifications.merge({"TopicConfigurations": [old]}, new, ("alb-log-onboarding-11111111",))

    assert merged == {"TopicConfigurations": [new]}


def test_our_rule_filters_created_log_files_under_the_account_prefix() -> None:
    ours = notifications.our_rule("id", "arn:aws:sns:us-east-1:1:t", KEY_PREFIX)
    assert ours["Events"] == ["s3:ObjectCreated:*"]
    assert notifications.filter_values(ours) == (KEY_PREFIX, ".log.gz")


def test_removing_the_only_rule_leaves_an_empty_configuration() -> None:
    ours = notifications.our_rule("id", "arn:aws:sns:us-east-1:1:t", KEY_PREFIX)
    assert notifications.remove({"TopicConfigurations": [ours]}, {"id"}) == {}


def test_destination_failures_read_every_refused_destination_from_s3s_answer() -> None:
    from botocore.exceptions import ClientError

    function = "arn:aws:lambda:us-east-1:123456789012:function:resize:dev"
    refused = ClientError(
        {
            "Error": {
                "Code": "InvalidArgument",
                "Message": "Unable to validate the following destination configurations",
                "ArgumentName1": "arn:aws:sqs:us-east-1:123456789012:orders",
                "ArgumentValue1": "The destination queue does not exist",
                "ArgumentName2": f"{function}, null",
                "ArgumentValue2": f"Not authorized to invoke function [{function}]",
            }
        },
        "PutBucketNotificationConfiguration",
    )
    ambiguous = ClientError(
        {"Error": {"Code": "InvalidArgument", "Message": "Configuration is ambiguously defined."}},
        "PutBucketNotificationConfiguration",
    )

    assert notifications.destination_failures(refused) == [
        notifications.DestinationFailure(
            "arn:aws:sqs:us-east-1:123456789012:orders", "The destination queue does not exist"
        ),
        notifications.DestinationFailure(function, f"Not authorized to invoke function [{function}]"),
    ]
    assert notifications.destination_failures(ambiguous) is None
