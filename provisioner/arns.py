"""ARN parsing and building: what the user passed, where this function runs, what we name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.errors import show

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_PARTITION = "(?P<partition>" + "|".join(PARTITIONS) + ")"

_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
_LB_ARN = re.compile(
    r"^arn:" + _PARTITION + r":elasticloadbalancing:(?P<region>" + _REGION + r"):"
    r"(?P<account>\d{12}):loadbalancer/(?P<kind>app|net|gwy)/"
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?)/(?P<lb_id>[0-9a-f]{16})$"
)
_ANY_ELB_ARN = re.compile(r"^arn:[a-z-]+:elasticloadbalancing:[^:]*:[^:]*:(?P<resource>[a-z-]+)/")
_FUNCTION_ARN = re.compile(
    r"^arn:" + _PARTITION + r":lambda:(?P<region>" + _REGION + r"):(?P<account>\d{12}):"
    r"function:(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
_IAM_PRINCIPAL_ARN = re.compile(
    r"^arn:" + _PARTITION + r":iam::(?P<account>\d{12}):"
    r"(?:root|(?:user|role)/[A-Za-z0-9+=,.@_/-]{1,512})$"
)
_STACK_ID = re.compile(
    r"^arn:" + _PARTITION + r":cloudformation:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stack/(?P<name>[A-Za-z][A-Za-z0-9-]{0,127})/(?P<uuid>[0-9a-f-]+)$"
)

_KIND_NAMES = {"net": "a network load balancer", "gwy": "a gateway load balancer"}
_EXPECTED_FORM = "arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>"
_WHERE_TO_FIND = "EC2 console > Load Balancers > your Application Load Balancer > Details > ARN"


class ArnError(ValueError):
    """A value is not the ARN it should be; the message says what to pass instead."""


def partition_for_region(region: str) -> str:
    """The ARN partition of a region (commercial, China, GovCloud)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True, slots=True)
class Environment:
    """Where the provisioner runs: the account, region and partition everything must match."""

    partition: str
    region: str
    account: str

    @classmethod
    def from_function_arn(cls, arn: str) -> Environment:
        """Read account/region/partition from the context's invoked_function_arn."""
        match = _FUNCTION_ARN.match(arn)
        if not match:
            raise ArnError(f"invoked function ARN {show(arn)} is not a Lambda function ARN")
        return cls(match["partition"], match["region"], match["account"])


@dataclass(frozen=True, slots=True)
class LoadBalancerArn:
    """A validated Application Load Balancer ARN."""

    arn: str
    partition: str
    region: str
    account: str
    name: str
    lb_id: str


@dataclass(frozen=True, slots=True)
class FunctionArn:
    """A Lambda function ARN, possibly qualified with a version or alias."""

    arn: str
    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None


def parse_load_balancer_arn(value: str, env: Environment) -> LoadBalancerArn:
    """Accept only an Application Load Balancer of this account and region; explain anything else."""
    text = value.strip()
    match = _LB_ARN.match(text)
    if not match:
        other = _ANY_ELB_ARN.match(text)
        if other and other["resource"] in ("listener", "listener-rule", "targetgroup"):
            raise ArnError(
                f"LoadBalancerArn {show(text)} is a {other['resource']} ARN, not a load balancer ARN; "
                f"pass the load balancer's ARN ({_EXPECTED_FORM}, see {_WHERE_TO_FIND})"
            )
        if ":elasticloadbalancing:" in text and re.search(r":loadbalancer/[^/]+$", text):
            raise ArnError(
                f"LoadBalancerArn {show(text)} is a Classic Load Balancer; this stack supports "
                f"Application Load Balancers ({_EXPECTED_FORM})"
            )
        raise ArnError(
            f"LoadBalancerArn {show(text)} is not a valid Application Load Balancer ARN; expected "
            f"{_EXPECTED_FORM} (see {_WHERE_TO_FIND})"
        )
    kind = match["kind"]
    if kind != "app":
        raise ArnError(
            f"LoadBalancerArn {show(text)} is {_KIND_NAMES[kind]}; this stack supports Application Load "
            f"Balancers (ARN ...:loadbalancer/app/...). Pass the ARN of an Application Load Balancer "
            f"({_WHERE_TO_FIND})"
        )
    if match["partition"] != env.partition:
        raise ArnError(
            f"LoadBalancerArn {show(text)} is in partition {match['partition']} but this stack runs in "
            f"{env.partition}"
        )
    if match["region"] != env.region:
        raise ArnError(
            f"LoadBalancerArn {show(text)} is in region {match['region']} but this stack runs in "
            f"{env.region}; access logs go to a bucket in the load balancer's own region, so deploy the "
            f"stack in {match['region']} (or pass a load balancer of {env.region})"
        )
    if match["account"] != env.account:
        raise ArnError(
            f"LoadBalancerArn {show(text)} belongs to account {match['account']} but this stack runs in "
            f"account {env.account}; deploy the stack in account {match['account']}"
        )
    return LoadBalancerArn(
        arn=text,
        partition=match["partition"],
        region=match["region"],
        account=match["account"],
        name=match["name"],
        lb_id=match["lb_id"],
    )


def parse_function_arn(value: str, env: Environment) -> FunctionArn:
    """A Lambda function ARN of this partition (the forwarder the topic invokes)."""
    text = value.strip()
    match = _FUNCTION_ARN.match(text)
    if not match:
        raise ArnError(
            f"ForwarderFunctionArn {show(text)} is not a Lambda function ARN "
            f"(arn:<partition>:lambda:<region>:<account>:function:<name>)"
        )
    if match["partition"] != env.partition:
        raise ArnError(f"ForwarderFunctionArn {show(text)} is not in partition {env.partition}")
    return FunctionArn(
        arn=text,
        partition=match["partition"],
        region=match["region"],
        account=match["account"],
        name=match["name"],
        qualifier=match["qualifier"],
    )


def check_principal_arn(value: str, env: Environment) -> str:
    """An IAM principal ARN (account root, user or role) of this partition, for the read grant."""
    text = value.strip()
    match = _IAM_PRINCIPAL_ARN.match(text)
    if not match:
        raise ArnError(
            f"ReaderPrincipalArn {show(text)} is not an IAM principal ARN; pass "
            f"arn:{env.partition}:iam::<account>:role/<name>, :user/<name> or :root"
        )
    if match["partition"] != env.partition:
        raise ArnError(f"ReaderPrincipalArn {show(text)} is not in partition {env.partition}")
    return text


def stack_name(stack_id: str) -> str:
    """The stack's name from its StackId ARN (falls back to a safe constant for odd ids)."""
    match = _STACK_ID.match(stack_id)
    if match:
        return match["name"]
    parts = stack_id.split("/")
    if len(parts) >= 2 and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", parts[1]):
        return parts[1]
    return "alb-log-onboarding"


def bucket_arn(partition: str, bucket: str) -> str:
    """ARN of a bucket."""
    return f"arn:{partition}:s3:::{bucket}"


def topic_arn(env: Environment, name: str) -> str:
    """ARN of a topic of this account and region."""
    return f"arn:{env.partition}:sns:{env.region}:{env.account}:{name}"
