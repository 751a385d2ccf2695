"""Create then Delete through the real handler: the account ends exactly as it started."""

from __future__ import annotations

import json
from typing import Any

from cfn import ACCOUNT, REGION, CustomResource, World, default_properties, moto_s3, snapshot

from provisioner.naming import STACK_TAG_KEY, default_bucket_name

ENDPOINT = "https://127.0.0.1:9/ingest?token=s3cr3t"
QUEUE_RULE = "orders-queue"
OTHER_TOPIC_RULE = "images-topic"


def props(world: World, **overrides: str) -> dict[str, str]:
    return default_properties(world.alb_arn, world.forwarder_arn, **overrides)


def statement(policy: dict[str, Any] | None, sid_start: str) -> list[dict[str, Any]]:
    return [s for s in (policy or {}).get("Statement", []) if s.get("Sid", "").startswith(sid_start)]


def test_create_with_a_new_bucket_then_delete_restores_everything(
    resource: CustomResource, world: World
) -> None:
    before = snapshot(world)

    answer = resource.create(props(world, Prefix="prod/web", SubscriptionEndpoint=ENDPOINT))

    assert answer.status == "SUCCESS", answer.reason
    bucket = default_bucket_name(ACCOUNT, REGION, resource.stack.stack_id)
    assert answer.data["BucketName"] == bucket
    assert answer.data["Prefix"] == "prod/web"
    topic_arn = answer.data["TopicArn"]
    assert topic_arn.startswith(f"arn:aws:sns:{REGION}:{ACCOUNT}:weblogs-alb-logs-")
    assert answer.physical_id.startswith("alblogs:v1:")

    # The bucket: SSE-S3, public access blocked, ACLs disabled, tagged, expiry rule.
    s3 = world.s3
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]
    assert ownership["ObjectOwnership"] == "BucketOwnerEnforced"
    assert {"Key": STACK_TAG_KEY, "Value": resource.stack.stack_id} in s3.get_bucket_tagging(Bucket=bucket)[
        "TagSet"
    ]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [30]

    # The policy: log delivery for the service principal and us-east-1's ELB account, TLS only.
    policy = world.policy(bucket)
    resource_arn = f"arn:aws:s3:::{bucket}/prod/web/AWSLogs/{ACCOUNT}/*"
    delivery = statement(policy, "AlbLogDelivery")
    assert {json.dumps(s["Principal"], sort_keys=True) for s in delivery} == {
        json.dumps({"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
        json.dumps({"AWS": "arn:aws:iam::127311923021:root"}),
    }
    assert {s["Resource"] for s in delivery} == {resource_arn}
    assert statement(policy, "AlbLogTls")[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    # The topic, its subscriptions and the forwarder's permission.
    attributes = world.sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    topic_policy = json.loads(attributes["Policy"])["Statement"]
    assert topic_policy[0]["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    assert {(p, e) for t, p, e in world.subscriptions() if t == topic_arn} == {
        ("lambda", world.forwarder_arn),
        ("https", ENDPOINT),
    }
    permission = world.lambda_policy()
    assert len(permission) == 1
    assert permission[0]["Principal"] == {"Service": "sns.amazonaws.com"}
    # The topic ARN alone: AWS documents SourceAccount for S3 and SES sources, not for SNS.
    assert permission[0]["Condition"] == {"ArnLike": {"AWS:SourceArn": topic_arn}}

    # The notification rule and, last, the load balancer.
    config = world.notifications(bucket)
    assert config["TopicConfigurations"][0]["TopicArn"] == topic_arn
    assert config["TopicConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]
    filter_rules = {
        r["Name"].lower(): r["Value"]
        for r in config["TopicConfigurations"][0]["Filter"]["Key"]["FilterRules"]
    }
    assert filter_rules == {"prefix": f"prod/web/AWSLogs/{ACCOUNT}/", "suffix": ".log.gz"}
    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": bucket,
        "access_logs.s3.prefix": "prod/web",
    }
    assert ENDPOINT not in json.dumps(answer.document), "the endpoint (it may carry a token) is never echoed"

    deleted = resource.delete(
        answer.physical_id, props(world, Prefix="prod/web", SubscriptionEndpoint=ENDPOINT)
    )

    assert deleted.status == "SUCCESS", deleted.reason
    assert deleted.physical_id == answer.physical_id
    assert snapshot(world) == before


def existing_bucket(world: World, name: str = "team-logs") -> dict[str, Any]:
    """A bucket someone else set up: a policy statement of theirs and three kinds of notifications."""
    s3 = world.s3
    s3.create_bucket(Bucket=name)
    foreign_policy = {
        "Version": "2012-10-17",
        "Id": "TeamPolicy",
        "Statement": [
            {
                "Sid": "TeamRead",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analysts"},
                "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{name}/reports/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(foreign_policy))
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": QUEUE_RULE,
                    "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders",
                    "Events": ["s3:ObjectCreated:Put"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
                }
            ],
            "TopicConfigurations": [
                {
                    "Id": OTHER_TOPIC_RULE,
                    "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:images",
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "images/"}]}},
                }
            ],
            "EventBridgeConfiguration": {},
        },
    )
    return foreign_policy


def test_existing_bucket_keeps_its_policy_and_notifications(resource: CustomResource, world: World) -> None:
    foreign_policy = existing_bucket(world)
    world.s3.put_object(Bucket="team-logs", Key="reports/q1.csv", Body=b"a,b\n")
    before = snapshot(world)
    reader = f"arn:aws:iam::{ACCOUNT}:role/log-vendor"
    properties = props(world, BucketName="team-logs", Prefix="alb", ReaderPrincipalArn=reader)

    answer = resource.create(properties)

    assert answer.status == "SUCCESS", answer.reason
    assert answer.data["BucketName"] == "team-logs"
    policy = world.policy("team-logs")
    assert policy is not None
    assert policy["Version"] == "2012-10-17" and policy["Id"] == "TeamPolicy"
    assert policy["Statement"][0] == foreign_policy["Statement"][0], (
        "their statement stays first and unchanged"
    )
    assert not statement(policy, "AlbLogTls"), "no TLS-only statement is forced on a bucket we did not create"
    read = statement(policy, "AlbLogRead")
    assert {s["Principal"]["AWS"] for s in read} == {reader}
    objects = next(s for s in read if s["Action"] == "s3:GetObject")
    assert objects["Resource"] == f"arn:aws:s3:::team-logs/alb/AWSLogs/{ACCOUNT}/*"
    listing = next(s for s in read if s["Action"] == "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"alb/AWSLogs/{ACCOUNT}/*"]}}

    config = world.notifications("team-logs")
    assert (
        config["QueueConfigurations"]
        == before["buckets"]["team-logs"]["notifications"]["QueueConfigurations"]
    )
    assert "EventBridgeConfiguration" in config
    assert config["TopicConfigurations"][0]["Id"] == OTHER_TOPIC_RULE
    assert len(config["TopicConfigurations"]) == 2

    deleted = resource.delete(answer.physical_id, properties)

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == before, "RetainBucket=false never deletes a bucket the stack did not create"
    assert world.s3.get_object(Bucket="team-logs", Key="reports/q1.csv")["Body"].read() == b"a,b\n"


def test_alb_already_logging_reuses_its_bucket_and_prefix(resource: CustomResource, world: World) -> None:
    world.s3.create_bucket(Bucket="legacy-alb-logs")
    world.set_access_logs(world.alb_arn, "legacy-alb-logs", "edge/web")
    before = snapshot(world)

    answer = resource.create(props(world))

    assert answer.status == "SUCCESS", answer.reason
    assert answer.data["BucketName"] == "legacy-alb-logs"
    assert answer.data["Prefix"] == "edge/web"
    assert world.bucket_names() == ["legacy-alb-logs"], "no new bucket when the ALB already logs somewhere"
    delivery = statement(world.policy("legacy-alb-logs"), "AlbLogDelivery")
    assert {s["Resource"] for s in delivery} == {f"arn:aws:s3:::legacy-alb-logs/edge/web/AWSLogs/{ACCOUNT}/*"}

    deleted = resource.delete(answer.physical_id, props(world))

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == before


def test_named_bucket_moves_logging_and_delete_puts_it_back(resource: CustomResource, world: World) -> None:
    world.s3.create_bucket(Bucket="legacy-alb-logs")
    world.s3.create_bucket(Bucket="team-logs")
    world.set_access_logs(world.alb_arn, "legacy-alb-logs", "edge")
    before = snapshot(world)
    properties = props(world, BucketName="team-logs", Prefix="alb")

    answer = resource.create(properties)

    assert answer.status == "SUCCESS", answer.reason
    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "team-logs"
    assert resource.delete(answer.physical_id, properties).status == "SUCCESS"
    assert world.access_logs(world.alb_arn) == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "legacy-alb-logs",
        "access_logs.s3.prefix": "edge",
    }
    assert snapshot(world) == before


def test_delete_leaves_logging_alone_when_the_user_pointed_it_elsewhere(
    resource: CustomResource, world: World
) -> None:
    world.s3.create_bucket(Bucket="team-logs")
    properties = props(world, BucketName="team-logs")
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    world.s3.create_bucket(Bucket="somewhere-else")
    world.set_access_logs(world.alb_arn, "somewhere-else", "mine")

    assert resource.delete(answer.physical_id, properties).status == "SUCCESS"

    assert world.access_logs(world.alb_arn)["access_logs.s3.bucket"] == "somewhere-else"
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "true"


def fill_with_versions(world: World, bucket: str) -> None:
    """Three versions of one object and a delete marker over another (written past moto's TLS check)."""
    world.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        moto_s3().put_object(bucket, "archive/a.txt", f"v{i}".encode())
    moto_s3().put_object(bucket, "archive/b.txt", b"b")
    moto_s3().delete_object(bucket, "archive/b.txt")
    listing = world.s3.list_object_versions(Bucket=bucket)
    assert len(listing["Versions"]) == 4 and len(listing["DeleteMarkers"]) == 1


def test_retain_bucket_false_deletes_the_created_bucket_with_every_version(
    resource: CustomResource, world: World
) -> None:
    before = snapshot(world)
    answer = resource.create(props(world, RetainBucket="false"))
    assert answer.status == "SUCCESS", answer.reason
    fill_with_versions(world, answer.data["BucketName"])

    deleted = resource.delete(answer.physical_id, props(world, RetainBucket="false"))

    assert deleted.status == "SUCCESS", deleted.reason
    assert answer.data["BucketName"] not in world.bucket_names()
    assert snapshot(world) == before


def test_retain_bucket_true_keeps_the_created_bucket_and_its_logs(
    resource: CustomResource, world: World
) -> None:
    answer = resource.create(props(world, RetainBucket="true"))
    assert answer.status == "SUCCESS", answer.reason
    bucket = answer.data["BucketName"]
    fill_with_versions(world, bucket)

    deleted = resource.delete(answer.physical_id, props(world, RetainBucket="true"))

    assert deleted.status == "SUCCESS", deleted.reason
    assert bucket in world.bucket_names()
    assert len(world.s3.list_object_versions(Bucket=bucket)["Versions"]) == 4
    policy = world.policy(bucket)
    assert [s["Sid"][:9] for s in policy["Statement"]] == ["AlbLogTls"], "only the TLS-only guard stays"
    assert world.access_logs(world.alb_arn)["access_logs.s3.enabled"] == "false"
    assert world.topics() == [] and world.subscriptions() == [] and world.lambda_policy() == []
    assert "TopicConfigurations" not in world.notifications(bucket)


def test_delete_after_a_failed_create_succeeds_and_changes_nothing(
    resource: CustomResource, world: World
) -> None:
    before = snapshot(world)
    bad = props(world, Prefix="AWSLogs/x")
    failed = resource.create(bad)
    assert failed.status == "FAILED"
    assert failed.physical_id.startswith("alblogs:v1:"), "a failed Create still carries an id Delete knows"

    deleted = resource.delete(failed.physical_id, bad)

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == before


def test_delete_of_an_unknown_or_garbage_physical_id_succeeds(resource: CustomResource, world: World) -> None:
    before = snapshot(world)
    for physical_id in (
        "weblogs_LogOnboarding_ABCD1234",
        "alblogs:v1:zzzz:notbase64",
        "alblogs:v1:0123abcd:" + "A" * 40,
        "alblogs:v9:0123abcd:eJw",
        "x" * 1024,
    ):
        answer = resource.delete(physical_id, props(world))
        assert answer.status == "SUCCESS", answer.reason
        assert answer.physical_id == physical_id
    assert snapshot(world) == before


def test_delete_succeeds_when_everything_is_already_gone(resource: CustomResource, world: World) -> None:
    world.s3.create_bucket(Bucket="team-logs")
    properties = props(world, BucketName="team-logs", SubscriptionEndpoint=ENDPOINT)
    answer = resource.create(properties)
    assert answer.status == "SUCCESS", answer.reason
    # The user removed things by hand before deleting the stack.
    world.elbv2.delete_load_balancer(LoadBalancerArn=world.alb_arn)
    world.sns.delete_topic(TopicArn=answer.data["TopicArn"])
    world.s3.delete_bucket_policy(Bucket="team-logs")
    world.s3.delete_bucket(Bucket="team-logs")
    world.lambda_.delete_function(FunctionName=world.forwarder_arn)

    deleted = resource.delete(answer.physical_id, properties)

    assert deleted.status == "SUCCESS", deleted.reason
    # And a second Delete (CloudFormation may retry) is just as quiet.
    assert resource.delete(answer.physical_id, properties).status == "SUCCESS"


def test_delete_of_a_created_bucket_the_user_already_removed(resource: CustomResource, world: World) -> None:
    before = snapshot(world)
    answer = resource.create(props(world))
    assert answer.status == "SUCCESS", answer.reason
    world.set_access_logs(world.alb_arn, "", "", enabled=False)
    world.s3.delete_bucket_policy(Bucket=answer.data["BucketName"])
    world.s3.delete_bucket(Bucket=answer.data["BucketName"])

    deleted = resource.delete(answer.physical_id, props(world))

    assert deleted.status == "SUCCESS", deleted.reason
    assert snapshot(world) == before
