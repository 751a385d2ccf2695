"""Properties arrive as strings; every problem is reported at once with what to pass instead."""

from __future__ import annotations

import pytest

from provisioner.arns import ArnError, Environment, parse_function_arn, parse_load_balancer_arn, stack_name
from provisioner.errors import InvalidPropertiesError
from provisioner.properties import (
    Properties,
    lenient_properties,
    parse_properties,
    prefix_problem,
    redact_url,
)

ENV = Environment("aws", "us-east-1", "123456789012")
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-prod/50dc6c495c0c9188"
FWD = "arn:aws:lambda:us-east-1:123456789012:function:weblogs-Forwarder"


def raw(**overrides: str) -> dict[str, str]:
    props = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:p",
        "LoadBalancerArn": ALB,
        "BucketName": "",
        "Prefix": "",
        "ForwarderFunctionArn": FWD,
        "SubscriptionEndpoint": "",
        "ReaderPrincipalArn": "",
        "RetainBucket": "true",
        "LogRetentionDays": "30",
    }
    props.update(overrides)
    return props


def test_a_complete_set_parses_into_typed_values() -> None:
    props = parse_properties(raw(RetainBucket="False", LogRetentionDays="365", Prefix="prod/web"), ENV)

    assert isinstance(props, Properties)
    assert props.load_balancer.name == "web-prod" and props.load_balancer.lb_id == "50dc6c495c0c9188"
    assert props.retain_bucket is False
    assert props.log_retention_days == 365
    assert props.prefix == "prod/web"
    assert props.forwarder is not None and props.forwarder.name == "weblogs-Forwarder"


def test_empty_strings_mean_not_set_with_safe_defaults() -> None:
    props = parse_properties(raw(RetainBucket="", LogRetentionDays="", ForwarderFunctionArn=""), ENV)

    assert props.retain_bucket is True, "an unset RetainBucket keeps the logs"
    assert props.log_retention_days is None
    assert props.forwarder is None


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            ALB.replace("/app/", "/net/"),
            "is a network load balancer; this stack supports Application Load Balancers",
        ),
        (ALB.replace("/app/", "/gwy/"), "is a gateway load balancer"),
        (ALB.replace("us-east-1", "eu-west-1"), "deploy the stack in eu-west-1"),
        (ALB.replace("123456789012", "210987654321"), "belongs to account 210987654321"),
        (ALB.replace("arn:aws:", "arn:aws-cn:"), "partition aws-cn"),
        (ALB.replace(":loadbalancer/", ":targetgroup/").replace("/app/", "/"), "targetgroup ARN"),
        (ALB + "/listener/abc", "not a valid Application Load Balancer ARN"),
        ("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web", "Classic Load Balancer"),
        ("web-prod", "expected arn:<partition>:elasticloadbalancing"),
        (ALB[:-1], "not a valid"),
    ],
)
def test_load_balancer_arn_problems_say_what_to_pass(arn: str, expected: str) -> None:
    with pytest.raises(ArnError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_load_balancer_arn(arn, ENV)


@pytest.mark.parametrize(
    ("env", "arn"),
    [
        (
            Environment("aws-us-gov", "us-gov-west-1", "123456789012"),
            ALB.replace("arn:aws:", "arn:aws-us-gov:"),
        ),
        (Environment("aws-cn", "cn-north-1", "123456789012"), ALB.replace("arn:aws:", "arn:aws-cn:")),
    ],
)
def test_load_balancer_arns_of_other_partitions(env: Environment, arn: str) -> None:
    arn = arn.replace("us-east-1", env.region)
    assert parse_load_balancer_arn(arn, env).partition == env.partition


def test_every_problem_is_listed_once() -> None:
    with pytest.raises(InvalidPropertiesError) as caught:
        parse_properties(
            raw(
                LoadBalancerArn="",
                BucketName="Bad_Bucket",
                Prefix="AWSLogs",
                ForwarderFunctionArn="fwd",
                SubscriptionEndpoint="http://x.example.com",
                ReaderPrincipalArn="arn:aws:iam::123:role/x",
                RetainBucket="yes",
                LogRetentionDays="0",
            ),
            ENV,
        )
    assert len(caught.value.problems) == 8
    text = str(caught.value)
    for name in ("LoadBalancerArn", "BucketName", "Prefix", "ForwarderFunctionArn", "SubscriptionEndpoint"):
        assert name in text
    for name in ("ReaderPrincipalArn", "RetainBucket", "LogRetentionDays"):
        assert name in text


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("", None),
        ("alb", None),
        ("team-a/alb_prod.v2", None),
        ("AWSLogs", "AWSLogs"),
        ("x/AWSLogs/y", "AWSLogs"),
        ("/alb", "start or end"),
        ("alb/", "start or end"),
        ("a//b", "'//'"),
        ("a b", "may only contain"),
        ("a*", "may only contain"),
        ("é", "may only contain"),
        ("a" * 513, "longer than"),
    ],
)
def test_prefix_rules(prefix: str, problem: str | None) -> None:
    found = prefix_problem(prefix)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize("days", ["1", "30", "36500"])
def test_retention_accepts_whole_days(days: str) -> None:
    assert parse_properties(raw(LogRetentionDays=days), ENV).log_retention_days == int(days)


@pytest.mark.parametrize("days", ["0", "-1", "1.5", "ten", "36501", " 3 0"])
def test_retention_refuses_anything_else(days: str) -> None:
    with pytest.raises(InvalidPropertiesError, match="LogRetentionDays"):
        parse_properties(raw(LogRetentionDays=days), ENV)


@pytest.mark.parametrize(
    "name",
    ["ab", "UPPER", "with_underscore", "-lead", "trail-", "a..b", "192.168.1.1", "xn--abc", "b-s3alias"],
)
def test_bucket_names_s3_refuses(name: str) -> None:
    with pytest.raises(InvalidPropertiesError, match="BucketName"):
        parse_properties(raw(BucketName=name), ENV)


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        ("https://ingest.example.com/v1/logs", True),
        ("https://ingest.example.com:8443/x?token=abc", True),
        ("http://ingest.example.com", False),
        ("ftp://x", False),
        ("https:///nohost", False),
        ("ingest.example.com", False),
    ],
)
def test_subscription_endpoint_must_be_https(endpoint: str, ok: bool) -> None:
    if ok:
        assert parse_properties(raw(SubscriptionEndpoint=endpoint), ENV).subscription_endpoint == endpoint
    else:
        with pytest.raises(InvalidPropertiesError, match="SubscriptionEndpoint"):
            parse_properties(raw(SubscriptionEndpoint=endpoint), ENV)


def test_redacted_urls_never_show_credentials_or_queries() -> None:
    assert (
        redact_url("https://user:pw@h.example.com:8443/p?token=abc#f") == "https://h.example.com:8443/p?..."
    )
    assert "abc" not in redact_url("http://h/x?token=abc")


@pytest.mark.parametrize(
    "reader",
    [
        "arn:aws:iam::210987654321:root",
        "arn:aws:iam::210987654321:role/vendor/reader",
        "arn:aws:iam::210987654321:user/bob",
    ],
)
def test_reader_principal_accepts_iam_arns(reader: str) -> None:
    assert parse_properties(raw(ReaderPrincipalArn=reader), ENV).reader_principal_arn == reader


def test_qualified_forwarder_arns_keep_their_qualifier() -> None:
    function = parse_function_arn(FWD + ":live", ENV)
    assert function.qualifier == "live" and function.name == "weblogs-Forwarder"


def test_lenient_properties_for_delete_never_refuse() -> None:
    lenient = lenient_properties({"RetainBucket": "perhaps", "Prefix": "x", "ForwarderFunctionArn": "?"})
    assert lenient.retain_bucket is True, "when unsure, keep the bucket"
    assert lenient_properties(None).retain_bucket is True
    assert lenient_properties({"RetainBucket": "FALSE"}).retain_bucket is False


def test_environment_comes_from_the_function_arn() -> None:
    env = Environment.from_function_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:p")
    assert env == Environment("aws-cn", "cn-north-1", "123456789012")
    with pytest.raises(ArnError):
        Environment.from_function_arn("not-an-arn")


def test_stack_name_from_stack_id() -> None:
    sid = (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/weblogs-prod/1b2c3d4e-0000-1111-2222-3333444455"
    )
    assert stack_name(sid) == "weblogs-prod"
    assert stack_name("garbage") == "alb-log-onboarding"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("", ()),
        ("/aws/lambda/api", ("/aws/lambda/api",)),
        (
            "/aws/lambda/api,/ecs/web#1,API-Gateway_Execution.Logs",
            ("/aws/lambda/api", "/ecs/web#1", "API-Gateway_Execution.Logs"),
        ),
        (",".join(f"/g/{i}" for i in range(20)), tuple(f"/g/{i}" for i in range(20))),
    ],
)
def test_log_group_names_parse_in_order(names: str, expected: tuple[str, ...]) -> None:
    props = parse_properties(raw(LogGroupNames=names, LogGroupFilterPattern="ERROR"), ENV)
    assert props.log_groups == expected
    assert props.filter_pattern == "ERROR"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"LogGroupNames": "/a, /b"}, "no spaces"),
        ({"LogGroupNames": "/a,,/b"}, "no spaces"),
        ({"LogGroupNames": "/a:b"}, "/a:b"),
        ({"LogGroupNames": "x" * 513}, "1-512"),
        ({"LogGroupNames": "/a,/b,/a"}, "/a more than once"),
        ({"LogGroupNames": ",".join(f"/g/{i}" for i in range(21))}, "at most 20"),
        ({"LogGroupNames": "/a", "ForwarderFunctionArn": ""}, "needs a forwarder"),
        ({"LogGroupNames": "/a", "LogGroupFilterPattern": "x" * 1025}, "longer than 1024"),
    ],
)
def test_log_group_names_problems(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidPropertiesError) as caught:
        parse_properties(raw(**overrides), ENV)
    assert problem in str(caught.value)


def test_delete_reads_every_well_formed_log_group_name() -> None:
    lenient = lenient_properties({"LogGroupNames": "/a,/b, /c,/a,bad:name"})
    assert lenient.log_groups == ("/a", "/b")
