"""The quick-create link: exact strings per partition, encoding, and the inputs it must refuse."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from script_modules import load_script

qcl = load_script("release/quick_create_link")

ARN_EU = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188"


def test_commercial_region_with_load_balancer_exact_string() -> None:
    link = qcl.quick_create_link("eu-west-1", "1.2.0", bucket_prefix="acme-alb", load_balancer_arn=ARN_EU)
    assert link == (
        "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1"
        "#/stacks/quickcreate?templateURL=https%3A%2F%2Facme-alb-eu-west-1.s3.eu-west-1.amazonaws.com"
        "%2Falb-log-onboarding%2F1.2.0%2Fonboarding.yaml&stackName=alb-log-onboarding"
        "&param_LoadBalancerArn=arn%3Aaws%3Aelasticloadbalancing%3Aeu-west-1%3A123456789012%3A"
        "loadbalancer%2Fapp%2Fmy-alb%2F50dc6c495c0c9188"
    )


def test_without_load_balancer_and_custom_stack_name() -> None:
    link = qcl.quick_create_link("us-east-1", "0.1.0", bucket_prefix="acme", stack_name="Logs-1")
    assert link == (
        "https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1"
        "#/stacks/quickcreate?templateURL=https%3A%2F%2Facme-us-east-1.s3.us-east-1.amazonaws.com"
        "%2Falb-log-onboarding%2F0.1.0%2Fonboarding.yaml&stackName=Logs-1"
    )
    assert "param_" not in link


def test_china_uses_the_china_console_and_s3_domain() -> None:
    arn = "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:loadbalancer/app/web/0123456789abcdef"
    link = qcl.quick_create_link("cn-north-1", "0.1.0", bucket_prefix="acme", load_balancer_arn=arn)
    assert link == (
        "https://console.amazonaws.cn/cloudformation/home?region=cn-north-1"
        "#/stacks/quickcreate?templateURL=https%3A%2F%2Facme-cn-north-1.s3.cn-north-1.amazonaws.com.cn"
        "%2Falb-log-onboarding%2F0.1.0%2Fonboarding.yaml&stackName=alb-log-onboarding"
        "&param_LoadBalancerArn=arn%3Aaws-cn%3Aelasticloadbalancing%3Acn-north-1%3A123456789012%3A"
        "loadbalancer%2Fapp%2Fweb%2F0123456789abcdef"
    )


def test_govcloud_uses_the_govcloud_console() -> None:
    link = qcl.quick_create_link("us-gov-west-1", "0.1.0", bucket_prefix="acme")
    assert link == (
        "https://console.amazonaws-us-gov.com/cloudformation/home?region=us-gov-west-1"
        "#/stacks/quickcreate?templateURL=https%3A%2F%2Facme-us-gov-west-1.s3.us-gov-west-1.amazonaws.com"
        "%2Falb-log-onboarding%2F0.1.0%2Fonboarding.yaml&stackName=alb-log-onboarding"
    )


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("ap-southeast-3", "https://b-ap-southeast-3.s3.ap-southeast-3.amazonaws.com/alb-log-onboarding/2/onboarding.yaml"),
        ("cn-northwest-1", "https://b-cn-northwest-1.s3.cn-northwest-1.amazonaws.com.cn/alb-log-onboarding/2/onboarding.yaml"),
        ("us-gov-east-1", "https://b-us-gov-east-1.s3.us-gov-east-1.amazonaws.com/alb-log-onboarding/2/onboarding.yaml"),
    ],
)  # fmt: skip
def test_template_url_per_partition(region: str, expected: str) -> None:
    assert qcl.template_url(region, "2", bucket_prefix="b") == expected


def test_every_fragment_value_decodes_back_to_the_input() -> None:
    link = qcl.quick_create_link("eu-west-1", "1.0.0-rc.1", bucket_prefix="acme", load_balancer_arn=ARN_EU)
    parts = urlsplit(link)
    assert parse_qs(parts.query) == {"region": ["eu-west-1"]}
    path, _, query = parts.fragment.partition("?")
    assert path == "/stacks/quickcreate"
    pairs = dict(pair.split("=", 1) for pair in query.split("&"))
    assert unquote(pairs["templateURL"]) == (
        "https://acme-eu-west-1.s3.eu-west-1.amazonaws.com/alb-log-onboarding/1.0.0-rc.1/onboarding.yaml"
    )
    assert unquote(pairs["param_LoadBalancerArn"]) == ARN_EU
    # Nothing that could end a value or start another is left unencoded.
    for value in pairs.values():
        assert not set(value) & set(":/?#&= ")


def test_rejects_an_arn_from_another_region() -> None:
    with pytest.raises(qcl.LinkError, match=r"load balancer is in eu-west-1 but the link is for us-east-1"):
        qcl.quick_create_link("us-east-1", "0.1.0", bucket_prefix="acme", load_balancer_arn=ARN_EU)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/my-nlb/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tg/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:eu-west-1:12345:loadbalancer/app/my-alb/50dc6c495c0c9188",
        "my-alb",
        ARN_EU + "&stackName=evil",
        # What the template's AllowedPattern refuses: a name starting with a hyphen, a short id.
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/-web/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c",
    ],
)
def test_rejects_what_is_not_an_alb_arn(arn: str) -> None:
    with pytest.raises(qcl.LinkError, match="not an Application Load Balancer ARN"):
        qcl.quick_create_link("eu-west-1", "0.1.0", bucket_prefix="acme", load_balancer_arn=arn)


def test_rejects_an_arn_whose_partition_does_not_match_the_region() -> None:
    arn = "arn:aws:elasticloadbalancing:cn-north-1:123456789012:loadbalancer/app/web/0123456789abcdef"
    with pytest.raises(qcl.LinkError, match=r"partition 'aws' does not match cn-north-1 \(aws-cn\)"):
        qcl.quick_create_link("cn-north-1", "0.1.0", bucket_prefix="acme", load_balancer_arn=arn)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "Europe"}, "not an AWS region name"),
        ({"region": "us-iso-east-1"}, "ISO"),
        ({"version": "1.0/../2"}, "version '1.0/../2' must"),
        ({"version": ""}, "version '' must"),
        ({"bucket_prefix": "Acme"}, "not a valid S3 bucket name"),
        ({"bucket_prefix": "acme.example"}, "not a valid S3 bucket name"),
        ({"stack_name": "1stack"}, "stack name '1stack' must"),
        ({"stack_name": "my stack"}, "stack name 'my stack' must"),
    ],
)
def test_rejects_bad_inputs(kwargs: dict[str, str], message: str) -> None:
    arguments = {"region": "eu-west-1", "version": "0.1.0", "bucket_prefix": "acme"} | kwargs
    region, version = arguments.pop("region"), arguments.pop("version")
    with pytest.raises(qcl.LinkError, match=message):
        qcl.quick_create_link(region, version, **arguments)


def test_cli_prints_the_link_and_takes_the_region_from_the_arn(capsys: pytest.CaptureFixture[str]) -> None:
    assert qcl.main(["--version", "1.2.0", "--bucket-prefix", "acme-alb", "--load-balancer-arn", ARN_EU]) == 0
    out = capsys.readouterr().out.strip()
    assert out == qcl.quick_create_link(
        "eu-west-1", "1.2.0", bucket_prefix="acme-alb", load_balancer_arn=ARN_EU
    )


@pytest.mark.parametrize("padded", [f"  {ARN_EU}", f"{ARN_EU}\n", f"\t{ARN_EU} "])
def test_whitespace_around_the_arn_is_ignored_as_the_provisioner_ignores_it(
    padded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pasted ARN often carries a space or a newline; the link carries the ARN without it."""
    expected = qcl.quick_create_link("eu-west-1", "1.2.0", bucket_prefix="acme-alb", load_balancer_arn=ARN_EU)
    assert qcl.quick_create_link(
        "eu-west-1", "1.2.0", bucket_prefix="acme-alb", load_balancer_arn=padded
    ) == (expected)
    assert qcl.main(["--version", "1.2.0", "--bucket-prefix", "acme-alb", "--load-balancer-arn", padded]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_cli_reports_a_bad_arn_with_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = qcl.main(
        ["--version", "1", "--bucket-prefix", "acme", "--region", "us-east-1", "--load-balancer-arn", ARN_EU]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error: the load balancer is in eu-west-1" in captured.err


def test_cli_without_region_or_arn_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        qcl.main(["--version", "1", "--bucket-prefix", "acme"])
    assert exc.value.code == 2
    assert "--region is required" in capsys.readouterr().err
