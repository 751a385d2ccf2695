"""Every bad input fails Create before anything changes, with a reason that says what to do."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cfn import ACCOUNT, CustomResource, World, client, default_properties, snapshot

LB_ID = "50dc6c495c0c9188"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def syntactic(
    kind: str, region: str = "us-east-1", account: str = ACCOUNT
) -> Callable[[World], dict[str, str]]:
    def build(world: World) -> dict[str, str]:
        arn = f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{kind}/edge/{LB_ID}"
        return default_properties(arn, world.forwarder_arn)

    return build


def with_props(**overrides: str) -> Callable[[World], dict[str, str]]:
    def build(world: World) -> dict[str, str]:
        return default_properties(world.alb_arn, world.forwarder_arn, **overrides)

    return build


def moto_lb(attr: str) -> Callable[[World], dict[str, str]]:
    def build(world: World) -> dict[str, str]:
        return default_properties(getattr(world, attr), world.forwarder_arn)

    return build


def kms_bucket(world: World) -> dict[str, str]:
    world.s3.create_bucket(Bucket="kms-logs")
    world.s3.put_bucket_encryption(
        Bucket="kms-logs",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": KEY_ARN,
                    }
                }
            ]
        },
    )
    return default_properties(world.alb_arn, world.forwarder_arn, BucketName="kms-logs")


def bucket_elsewhere(world: World) -> dict[str, str]:
    client("s3", "eu-west-1").create_bucket(
        Bucket="eu-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return default_properties(world.alb_arn, world.forwarder_arn, BucketName="eu-logs")


def overlapping_rule(world: World) -> dict[str, str]:
    world.s3.create_bucket(Bucket="busy-logs")
    world.s3.put_bucket_notification_configuration(
        Bucket="busy-logs",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "siem-ingest",
                    "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:siem",
                    "Events": ["s3:ObjectCreated:Put"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".gz"}]}},
                }
            ]
        },
    )
    return default_properties(world.alb_arn, world.forwarder_arn, BucketName="busy-logs", Prefix="alb")


def alb_logging_to_a_kms_bucket(world: World) -> dict[str, str]:
    kms_bucket(world)
    world.set_access_logs(world.alb_arn, "kms-logs", "old")
    return default_properties(world.alb_arn, world.forwarder_arn)


CASES: dict[str, tuple[Callable[[World], dict[str, str]], list[str]]] = {
    "nlb arn": (
        syntactic("net"),
        ["is a network load balancer", "Application Load Balancers", "loadbalancer/app/"],
    ),
    "gwlb arn": (syntactic("gwy"), ["is a gateway load balancer", "Application Load Balancers"]),
    "nlb behind an app-shaped arn": (moto_lb("nlb_arn"), ["is a network load balancer"]),
    "gwlb behind an app-shaped arn": (moto_lb("gwlb_arn"), ["is a gateway load balancer"]),
    "other region": (
        syntactic("app", region="eu-west-1"),
        ["region eu-west-1", "deploy the stack in eu-west-1"],
    ),
    "other account": (syntactic("app", account="210987654321"), ["account 210987654321", "runs in account"]),
    "malformed": (
        with_props(LoadBalancerArn="my-load-balancer"),
        ["not a valid Application Load Balancer ARN"],
    ),
    "target group arn": (
        with_props(
            LoadBalancerArn=f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/web/{LB_ID}"
        ),
        ["targetgroup ARN", "load balancer's ARN"],
    ),
    "missing": (with_props(LoadBalancerArn=""), ["LoadBalancerArn is required"]),
    "load balancer does not exist": (syntactic("app"), ["was not found in account 123456789012"]),
    "kms bucket": (
        kms_bucket,
        ["aws:kms", "only to buckets using SSE-S3", "switch the bucket's default encryption"],
    ),
    "kms bucket the alb already logs to": (alb_logging_to_a_kms_bucket, ["aws:kms", "SSE-S3"]),
    "bucket in another region": (bucket_elsewhere, ["is in region eu-west-1", "its own region"]),
    "overlapping rule": (
        overlapping_rule,
        [
            "rule 'siem-ingest'",
            "arn:aws:sqs:us-east-1:123456789012:siem",
            "remove that rule",
            "from that rule's queue",
        ],
    ),
    "AWSLogs in prefix": (with_props(Prefix="team/AWSLogs"), ["contains 'AWSLogs'"]),
    "slash around prefix": (with_props(Prefix="/alb/"), ["must not start or end with '/'"]),
    "wildcard in prefix": (with_props(Prefix="alb*"), ["may only contain"]),
    "retention zero": (with_props(LogRetentionDays="0"), ["LogRetentionDays must be a whole number"]),
    "retention words": (with_props(LogRetentionDays="ten"), ["LogRetentionDays", "not ten"]),
    "retain yes": (with_props(RetainBucket="yes"), ["RetainBucket must be 'true' or 'false'"]),
    "http endpoint": (
        with_props(SubscriptionEndpoint="http://logs.example.com/in"),
        ["must be an https:// URL"],
    ),
    "reader not iam": (
        with_props(ReaderPrincipalArn="vendor"),
        ["ReaderPrincipalArn", "not an IAM principal ARN"],
    ),
    "bad bucket name": (with_props(BucketName="Team_Logs"), ["not a valid S3 bucket name"]),
    "bad forwarder": (with_props(ForwarderFunctionArn="forwarder"), ["ForwarderFunctionArn", "not a Lambda"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_before_changing_anything(case: str, resource: CustomResource, world: World) -> None:
    build, expected = CASES[case]
    properties = build(world)
    before = snapshot(world)

    answer = resource.create(properties)

    assert answer.status == "FAILED"
    for text in expected:
        assert text in answer.reason, answer.reason
    assert answer.data == {}
    assert snapshot(world) == before

    rollback = resource.delete(answer.physical_id, properties)

    assert rollback.status == "SUCCESS", rollback.reason
    assert snapshot(world) == before


def test_every_problem_is_reported_at_once(resource: CustomResource, world: World) -> None:
    answer = resource.create(
        default_properties(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/x/50dc6c495c0c9188",
            world.forwarder_arn,
            Prefix="AWSLogs",
            RetainBucket="maybe",
            LogRetentionDays="-1",
            SubscriptionEndpoint="http://x",
        )
    )

    assert answer.status == "FAILED"
    for text in ("network load balancer", "AWSLogs", "RetainBucket", "LogRetentionDays", "https://"):
        assert text in answer.reason


def test_unknown_extra_properties_are_ignored(resource: CustomResource, world: World) -> None:
    properties = default_properties(world.alb_arn, world.forwarder_arn, Revision="7")
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    assert resource.delete(answer.physical_id, properties).status == "SUCCESS"


def test_a_reason_never_leaks_the_endpoint_query(resource: CustomResource, world: World) -> None:
    answer = resource.create(
        default_properties(world.alb_arn, world.forwarder_arn, SubscriptionEndpoint="http://h/x?token=abc123")
    )
    assert answer.status == "FAILED"
    assert "abc123" not in json.dumps(answer.document)
