"""What the console accepts: parameter patterns, descriptions, groups, and the template Rules.

CloudFormation checks AllowedPattern with Java regular expressions against the whole value; the patterns
here use only constructs that mean the same in Python, so re.fullmatch gives the console's answer.
"""

from __future__ import annotations

import re

import pytest

from .template_model import ACCOUNT, Stack, load_template

ALB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188"
ENDPOINT = "https://logs.example.com/v1/ingest"


def accepts(parameter: str, value: str) -> bool:
    spec = load_template()["Parameters"][parameter]
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return False
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return False
    return re.fullmatch(spec.get("AllowedPattern", ".*"), value) is not None


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-load-balancer/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:ap-southeast-4:123456789012:loadbalancer/app/a/0123456789abcdef",
        "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/prod-web/0f1e2d3c4b5a6978",
        "arn:aws-cn:elasticloadbalancing:cn-northwest-1:123456789012:loadbalancer/app/Web-01/abcdef0123456789",
        "arn:aws:elasticloadbalancing:eu-central-2:123456789012:loadbalancer/app/"
        + "a" * 32
        + "/50dc6c495c0c9188",
    ],
)
def test_load_balancer_arn_accepts_application_load_balancers(arn: str) -> None:
    assert accepts("LoadBalancerArn", arn)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/my-nlb/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/gwy/my-gwlb/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/my-classic-elb",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
        "arn:aws:elasticloadbalancing:us-east-1:1234567890:loadbalancer/app/web/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/-web/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50DC6C495C0C9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/"
        + "a" * 33
        + "/50dc6c495c0c9188",
        "arn:aws-iso:elasticloadbalancing:us-iso-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
        " arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
        "my-load-balancer",
        "",
    ],
)
def test_load_balancer_arn_rejects_everything_else(arn: str) -> None:
    assert not accepts("LoadBalancerArn", arn)


def test_load_balancer_arn_is_required_and_says_where_to_find_it() -> None:
    spec = load_template()["Parameters"]["LoadBalancerArn"]
    assert "Default" not in spec
    assert "Load Balancers" in spec["Description"]
    assert "describe-load-balancers" in spec["Description"]
    assert "Network" in spec["ConstraintDescription"] or "net/" in spec["ConstraintDescription"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("alb", True),
        ("prod/web-01", True),
        ("team_a/(old).logs!", True),
        ("/alb", False),
        ("alb/", False),
        ("a//b", False),
        ("prod/AWSLogs", False),
        ("AWSLogs", False),
        ("alb/*", False),
        ("alb?", False),
        ("${aws:username}", False),
        ("with space", False),
        ("a" * 201, False),
    ],
)
def test_log_prefix(value: str, ok: bool) -> None:
    assert accepts("LogPrefix", value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("my-alb-logs", True),
        ("logs.example.com", True),
        ("ab", False),
        ("My-Logs", False),
        ("-logs", False),
        ("logs-", False),
        ("a" * 64, False),
        ("bucket/prefix", False),
    ],
)
def test_log_bucket_name(value: str, ok: bool) -> None:
    assert accepts("LogBucketName", value) is ok


@pytest.mark.parametrize("parameter", ["IngestEndpoint", "SubscriptionEndpoint"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("https://logs.example.com/v1/ingest?region=eu", True),
        ("http://logs.example.com/", False),
        ("logs.example.com", False),
        ("https://", False),
        ("https://logs.example.com/a b", False),
    ],
)
def test_endpoints_must_be_https(parameter: str, value: str, ok: bool) -> None:
    assert accepts(parameter, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("arn:aws:iam::123456789012:role/log-reader", True),
        ("arn:aws:iam::123456789012:role/path/vendor-reader", True),
        ("arn:aws-cn:iam::123456789012:user/reader", True),
        ("arn:aws:iam::123456789012:root", True),
        ("123456789012", False),
        ("arn:aws:iam::123456789012:group/readers", False),
        ("arn:aws:sts::123456789012:assumed-role/r/s", False),
        ("*", False),
    ],
)
def test_reader_principal(value: str, ok: bool) -> None:
    assert accepts("ReaderPrincipalArn", value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:ingest/token-AbC123", True),
        ("arn:aws-us-gov:secretsmanager:us-gov-east-1:123456789012:secret:token-abcdef", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:token", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
        ("ingest-token", False),
    ],
)
def test_existing_secret_must_be_a_full_arn(value: str, ok: bool) -> None:
    assert accepts("AuthSecretArn", value) is ok


@pytest.mark.parametrize(
    ("value", "ok"), [("X-API-Key", True), ("DD-API-KEY", True), ("X API", False), ("", False)]
)
def test_header_name_is_an_http_token(value: str, ok: bool) -> None:
    assert accepts("AuthHeaderName", value) is ok


def test_code_bucket_prefix_leaves_room_for_the_longest_region_name() -> None:
    spec = load_template()["Parameters"]["CodeBucketPrefix"]
    longest_region = "ap-southeast-5"  # 14 characters, the longest region names today
    assert int(spec["MaxLength"]) + 1 + len(longest_region) <= 63


# Lambda keeps 100 of an account's concurrency unreserved; the default account limit is 1000 (new accounts
# may start lower).
LAMBDA_DEFAULT_ACCOUNT_CONCURRENCY = 1000
LAMBDA_MIN_UNRESERVED = 100


def test_reserved_concurrency_admits_only_what_a_default_account_can_reserve() -> None:
    spec = load_template()["Parameters"]["ForwarderReservedConcurrency"]
    assert int(spec["MinValue"]) == -1
    assert int(spec["MaxValue"]) == LAMBDA_DEFAULT_ACCOUNT_CONCURRENCY - LAMBDA_MIN_UNRESERVED
    description = " ".join(str(spec["Description"]).split())
    assert "100" in description and "unreserved" in description


# The bounds of an SQS event source mapping's ScalingConfig.MaximumConcurrency (Lambda API reference).
ESM_MIN_CONCURRENCY = 2
ESM_MAX_CONCURRENCY = 1000


def test_work_queue_concurrency_takes_what_an_event_source_mapping_accepts_and_says_why() -> None:
    spec = load_template()["Parameters"]["WorkQueueMaxConcurrency"]
    assert (int(spec["MinValue"]), int(spec["MaxValue"])) == (ESM_MIN_CONCURRENCY, ESM_MAX_CONCURRENCY)
    description = " ".join(str(spec["Description"]).split())
    assert "endpoint" in description and "backfill" in description and "continued" in description
    interface = load_template()["Metadata"]["AWS::CloudFormation::Interface"]
    (group,) = [g for g in interface["ParameterGroups"] if "WorkQueueMaxConcurrency" in g["Parameters"]]
    assert "ForwarderReservedConcurrency" in group["Parameters"]


def test_every_default_satisfies_its_own_constraints() -> None:
    for name, spec in load_template()["Parameters"].items():
        if "Default" in spec and spec["Type"] == "String":
            assert accepts(name, str(spec["Default"])), name
        if "Default" in spec and spec["Type"] == "Number":
            value = float(spec["Default"])
            assert float(spec.get("MinValue", value)) <= value <= float(spec.get("MaxValue", value)), name


def test_every_parameter_is_described_labelled_and_grouped_once() -> None:
    template = load_template()
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert set(interface["ParameterLabels"]) == set(template["Parameters"])
    for name, spec in template["Parameters"].items():
        assert len(spec.get("Description", "")) >= 40, f"{name} needs a description a user understands"


def test_the_credential_parameter_is_hidden() -> None:
    params = load_template()["Parameters"]
    assert params["AuthSecret"]["NoEcho"] is True
    assert [name for name, spec in params.items() if spec.get("NoEcho")] == ["AuthSecret"]


# -- Rules -----------------------------------------------------------------------------------------------
def failures(**parameters: str) -> list[str]:
    parameters.setdefault("LoadBalancerArn", ALB_ARN)
    return Stack(parameters=parameters).rule_failures()


SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ingest-token-AbCdEf"
DOMAIN_ARN = f"arn:aws:es:us-east-1:{ACCOUNT}:domain/alb-logs"
SIGNED = {"IngestEndpoint": ENDPOINT, "AuthType": "aws_sigv4"}


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"IngestEndpoint": ENDPOINT},
        {"IngestEndpoint": ENDPOINT, "AuthType": "bearer", "AuthSecret": "token"},
        {"IngestEndpoint": ENDPOINT, "AuthType": "apikey", "AuthSecretArn": SECRET_ARN},
        {"IngestEndpoint": ENDPOINT, "AuthType": "basic", "AuthUsername": "u", "AuthSecret": "p"},
        {**SIGNED, "OpenSearchResourceArn": DOMAIN_ARN},
        {**SIGNED, "OpenSearchResourceArn": f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/0a1b2c3d4e5f"},
    ],
)
def test_rules_accept_consistent_settings(parameters: dict[str, str]) -> None:
    assert failures(**parameters) == []


@pytest.mark.parametrize(
    ("parameters", "rule"),
    [
        (
            {
                "IngestEndpoint": ENDPOINT,
                "AuthType": "bearer",
                "AuthSecret": "t",
                "AuthSecretArn": SECRET_ARN,
            },
            "OneCredentialSource",
        ),
        ({"IngestEndpoint": ENDPOINT, "AuthType": "bearer"}, "CredentialForAuthType"),
        ({"IngestEndpoint": ENDPOINT, "AuthType": "basic", "AuthSecret": "p"}, "UsernameForBasicAuth"),
        ({"IngestEndpoint": ENDPOINT, "AuthSecret": "unused"}, "NoCredentialWithoutAuthType"),
        ({"AuthType": "bearer", "AuthSecret": "t"}, "ForwarderSettingsNeedEndpoint"),
        (SIGNED, "OpenSearchResourceForSigV4"),
        ({**SIGNED, "OpenSearchResourceArn": DOMAIN_ARN, "AuthSecret": "t"}, "OpenSearchResourceForSigV4"),
        (
            {"IngestEndpoint": ENDPOINT, "OpenSearchResourceArn": DOMAIN_ARN},
            "NoOpenSearchResourceWithoutSigV4",
        ),
    ],
)
def test_rules_refuse_inconsistent_settings_with_a_reason(parameters: dict[str, str], rule: str) -> None:
    found = failures(**parameters)
    assert any(f.startswith(f"{rule}: ") and len(f) > len(rule) + 30 for f in found), found


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        (DOMAIN_ARN, True),
        ("arn:aws-us-gov:es:us-gov-west-1:123456789012:domain/logs-01", True),
        ("arn:aws:aoss:eu-west-1:123456789012:collection/07tjusf2h91cunochc", True),
        # A domain's paths, a domain name starting with a digit or holding capitals, a collection by name
        # path, another service, a missing account.
        (f"{DOMAIN_ARN}/*", False),
        ("arn:aws:es:us-east-1:123456789012:domain/1logs", False),
        ("arn:aws:es:us-east-1:123456789012:domain/Logs", False),
        ("arn:aws:aoss:us-east-1:123456789012:collection/alb-logs", False),
        ("arn:aws:s3:::alb-logs", False),
        ("arn:aws:es:us-east-1::domain/logs", False),
    ],
)
def test_opensearch_resource_arn_accepts_a_domain_or_a_collection(value: str, ok: bool) -> None:
    assert accepts("OpenSearchResourceArn", value) is ok
