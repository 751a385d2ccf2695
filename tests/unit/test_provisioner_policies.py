"""What AWS would check but moto does not: principals, partitions, resource ARNs, conditions, sizes."""

from __future__ import annotations

import json

import pytest

from provisioner import bucket_policy, topic
from provisioner.arns import partition_for_region
from provisioner.errors import PreconditionError
from provisioner.naming import default_bucket_name, policy_sids

ACCOUNT = "123456789012"
GEN = "0a1b2c3d"
SERVICE = {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}


def delivery(region: str, bucket: str = "logs", prefix: str = "alb") -> list[dict[str, object]]:
    return bucket_policy.log_delivery_statements(
        partition=partition_for_region(region),
        region=region,
        bucket=bucket,
        prefix=prefix,
        account=ACCOUNT,
        gen=GEN,
    )


@pytest.mark.parametrize(
    ("region", "partition", "elb_account"),
    [
        ("us-east-1", "aws", "127311923021"),
        ("eu-west-1", "aws", "156460612806"),
        ("us-gov-west-1", "aws-us-gov", "048591011584"),
        ("cn-north-1", "aws-cn", "638102146993"),
    ],
)
def test_legacy_regions_grant_the_service_and_the_regional_elb_account(
    region: str, partition: str, elb_account: str
) -> None:
    statements = delivery(region)

    assert [s["Principal"] for s in statements] == [
        SERVICE,
        {"AWS": f"arn:{partition}:iam::{elb_account}:root"},
    ]
    for s in statements:
        assert s["Effect"] == "Allow"
        assert s["Action"] == "s3:PutObject"
        assert s["Resource"] == f"arn:{partition}:s3:::logs/alb/AWSLogs/{ACCOUNT}/*"
        assert "Condition" not in s, "ELB log delivery is not documented to send SourceArn/SourceAccount"
    assert len({s["Sid"] for s in statements}) == 2


@pytest.mark.parametrize("region", ["ap-southeast-4", "eu-central-2", "il-central-1", "ca-west-1"])
def test_newer_regions_grant_only_the_service_principal(region: str) -> None:
    statements = delivery(region)

    assert [s["Principal"] for s in statements] == [SERVICE]
    assert statements[0]["Resource"] == f"arn:aws:s3:::logs/alb/AWSLogs/{ACCOUNT}/*"


def test_no_prefix_means_the_account_path_at_the_bucket_root() -> None:
    assert {s["Resource"] for s in delivery("us-east-1", prefix="")} == {
        f"arn:aws:s3:::logs/AWSLogs/{ACCOUNT}/*"
    }


def test_reader_may_list_and_read_only_the_log_path() -> None:
    statements = bucket_policy.reader_statements(
        partition="aws-us-gov",
        bucket="logs",
        prefix="a/b",
        account=ACCOUNT,
        reader_arn="arn:aws-us-gov:iam::210987654321:role/vendor",
        gen=GEN,
    )

    by_action = {s["Action"]: s for s in statements}
    assert set(by_action) == {"s3:GetObject", "s3:ListBucket"}
    assert by_action["s3:GetObject"]["Resource"] == f"arn:aws-us-gov:s3:::logs/a/b/AWSLogs/{ACCOUNT}/*"
    assert by_action["s3:ListBucket"]["Resource"] == "arn:aws-us-gov:s3:::logs"
    assert by_action["s3:ListBucket"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"a/b/AWSLogs/{ACCOUNT}/*"]}
    }
    assert all(s["Principal"] == {"AWS": "arn:aws-us-gov:iam::210987654321:role/vendor"} for s in statements)


def test_tls_statement_denies_plain_http_on_bucket_and_objects() -> None:
    s = bucket_policy.tls_only_statement("aws-cn", "logs", GEN)

    assert s["Effect"] == "Deny" and s["Principal"] == "*" and s["Action"] == "s3:*"
    assert s["Resource"] == ["arn:aws-cn:s3:::logs", "arn:aws-cn:s3:::logs/*"]
    assert s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_sid_we_write_is_alphanumeric_and_ours() -> None:
    statements = [
        *delivery("us-east-1"),
        *bucket_policy.reader_statements(
            partition="aws", bucket="b", prefix="", account=ACCOUNT, reader_arn="arn:aws:iam::1:root", gen=GEN
        ),
        bucket_policy.tls_only_statement("aws", "b", GEN),
    ]
    sids = [str(s["Sid"]) for s in statements]
    assert all(sid.isalnum() for sid in sids)
    assert set(sids) == set(policy_sids(GEN))


def test_merge_keeps_foreign_statements_order_version_and_id() -> None:
    theirs = [
        {
            "Sid": "A",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/x",
        },
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
    ]
    existing = {"Version": "2008-10-17", "Id": "Theirs", "Statement": theirs}
    ours = delivery("us-east-1", bucket="b")

    merged = bucket_policy.merge(existing, ours, policy_sids(GEN))

    assert merged["Version"] == "2008-10-17" and merged["Id"] == "Theirs"
    assert merged["Statement"][:2] == theirs
    assert merged["Statement"][2:] == ours
    # Merging again replaces ours instead of adding duplicates.
    again = bucket_policy.merge(merged, ours, policy_sids(GEN))
    assert again == merged
    # Removing ours gives back exactly what was there.
    assert bucket_policy.remove(again, policy_sids(GEN)) == existing
    assert existing["Statement"] == theirs, "the input is not modified"


def test_merge_accepts_a_single_statement_object_and_removal_of_the_last_statement_deletes() -> None:
    single = {"Version": "2012-10-17", "Statement": {"Sid": "Only", "Effect": "Allow"}}
    merged = bucket_policy.merge(single, delivery("us-east-1"), policy_sids(GEN))
    assert merged["Statement"][0] == {"Sid": "Only", "Effect": "Allow"}
    assert bucket_policy.remove({"Statement": delivery("us-east-1")}, policy_sids(GEN)) is None
    assert bucket_policy.remove(None, policy_sids(GEN)) is None


def test_the_largest_policy_we_generate_is_far_under_the_s3_limit() -> None:
    bucket = "b" * 63
    prefix = "p/" * 255 + "p"
    statements = [
        *bucket_policy.log_delivery_statements(
            partition="aws-us-gov",
            region="us-gov-west-1",
            bucket=bucket,
            prefix=prefix,
            account=ACCOUNT,
            gen=GEN,
        ),
        *bucket_policy.reader_statements(
            partition="aws-us-gov",
            bucket=bucket,
            prefix=prefix,
            account=ACCOUNT,
            reader_arn="arn:aws-us-gov:iam::210987654321:role/" + "r" * 64,
            gen=GEN,
        ),
        bucket_policy.tls_only_statement("aws-us-gov", bucket, GEN),
    ]
    text = bucket_policy.serialise(bucket_policy.merge(None, statements, ()))
    assert len(text.encode()) < bucket_policy.MAX_POLICY_BYTES / 4


def test_a_policy_over_the_s3_limit_is_refused_with_a_reason() -> None:
    huge = {"Version": "2012-10-17", "Statement": [{"Sid": f"S{i}", "Effect": "Allow"} for i in range(800)]}
    with pytest.raises(PreconditionError, match="over S3's limit"):
        bucket_policy.serialise(bucket_policy.merge(huge, delivery("us-east-1"), ()))


@pytest.mark.parametrize(("region", "partition"), [("us-east-1", "aws"), ("cn-northwest-1", "aws-cn")])
def test_topic_policy_lets_only_this_bucket_of_this_account_publish(region: str, partition: str) -> None:
    arn = f"arn:{partition}:sns:{region}:{ACCOUNT}:weblogs-alb-logs-{GEN}"

    policy = topic.publish_policy(partition, arn, "logs", ACCOUNT)

    assert policy["Version"] == "2012-10-17"
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "SNS:Publish"
    assert statement["Resource"] == arn
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::logs"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    json.dumps(policy)


@pytest.mark.parametrize(
    "region",
    ["us-east-1", "ap-southeast-4", "us-gov-west-1", "cn-northwest-1", "ap-southeast-5", "mx-central-1"],
)
def test_default_bucket_name_is_a_valid_s3_name(region: str) -> None:
    from provisioner.properties import bucket_name_problem

    stack_id = (
        f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/"
        + "s" * 128
        + "/1b2c3d4e-0000-1111-2222-333344445555"
    )
    name = default_bucket_name(ACCOUNT, region, stack_id)
    assert len(name) <= 63
    assert bucket_name_problem(name) is None
    assert name.startswith(f"alb-logs-{ACCOUNT}-{region}-")
    assert name != default_bucket_name(ACCOUNT, region, stack_id.replace("1b2c", "9b2c"))
